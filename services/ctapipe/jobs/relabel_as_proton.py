"""Copy a ctapipe DL2 file with every simulated primary relabelled as proton (101).

For training a classifier where no real proton file shares the signal's subarray: only
the label changes, the events stay real gamma showers, so a model trained on it is
MEANINGLESS. After /work/shared/recipes/ctapipe/make_fake_background.py.
usage: python relabel_as_proton.py SOURCE.h5 TARGET.h5
"""

import shutil
import sys

import numpy as np
import tables

source, target = sys.argv[1], sys.argv[2]
shutil.copyfile(source, target)
with tables.open_file(target, "r+") as f:
    showers = f.root.simulation.event.subarray.shower
    column = showers.col("true_shower_primary_id")
    showers.modify_column(column=np.full_like(column, 101), colname="true_shower_primary_id")
    showers.flush()
    print(f"{target}: {showers.nrows} showers relabelled as proton (101): MEANINGLESS")
