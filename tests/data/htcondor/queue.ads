ClusterId = 4211
ProcId = 0
JobStatus = 1
CtaoflowJob = "prod5b.proc.1.0"
CtaoflowSite = "CC-IN2P3"
JobBatchName = "prod5b.proc"
Out = "/spool/output/prod5b.proc.1.0.out"
Err = "/spool/output/prod5b.proc.1.0.err"

ClusterId = 4211
ProcId = 1
JobStatus = 2
CtaoflowJob = "prod5b.proc.2.0"
CtaoflowSite = "CC-IN2P3"
JobBatchName = "prod5b.proc"

ClusterId = 4211
ProcId = 2
JobStatus = 5
HoldReasonCode = 47
HoldReasonSubCode = 0
HoldReason = "The job exceeded allowed execute duration of 0+01:00:00"
CtaoflowJob = "prod5b.proc.3.0"
CtaoflowSite = "CC-IN2P3"
JobBatchName = "prod5b.proc"

ClusterId = 4211
ProcId = 3
JobStatus = 5
HoldReasonCode = 34
HoldReasonSubCode = 0
HoldReason = "Error from slot1_4@wn042.example.org: Job has gone over cgroup memory limit of 2000 megabytes. Last measured usage: 2087 megabytes.  Consider resubmitting with a higher request_memory."
CtaoflowJob = "prod5b.proc.4.0"
CtaoflowSite = "CC-IN2P3"
JobBatchName = "prod5b.proc"

ClusterId = 4211
ProcId = 4
JobStatus = 5
HoldReasonCode = 12
HoldReasonSubCode = 2
HoldReason = "Error from slot1_2@wn017.example.org: STARTER at 10.0.0.17 failed to send file(s) to <10.0.0.2:9618>: error reading from /var/lib/condor/execute/dir_1234/out.h5: (errno 2) No such file or directory"
CtaoflowJob = "prod5b.proc.5.0"
CtaoflowSite = "CC-IN2P3"
JobBatchName = "prod5b.proc"

ClusterId = 4211
ProcId = 5
JobStatus = 5
HoldReasonCode = 3
HoldReasonSubCode = 0
HoldReason = "The job attribute PeriodicHold expression '(JobStatus == 2) && (time() - JobCurrentStartDate > MaxRuntime)' evaluated to TRUE"
CtaoflowJob = "prod5b.proc.6.0"
CtaoflowSite = "CC-IN2P3"
JobBatchName = "prod5b.proc"

ClusterId = 4211
ProcId = 6
JobStatus = 6
CtaoflowJob = "prod5b.proc.7.0"
CtaoflowSite = "CC-IN2P3"
JobBatchName = "prod5b.proc"

ClusterId = 4211
ProcId = 7
JobStatus = 7
CtaoflowJob = "prod5b.proc.8.0"
CtaoflowSite = "CC-IN2P3"
JobBatchName = "prod5b.proc"

ClusterId = 4211
ProcId = 8
JobStatus = 5
HoldReasonCode = 15
HoldReasonSubCode = 0
HoldReason = "submitted on hold at user's request"
CtaoflowJob = "prod5b.proc.9.0"
CtaoflowSite = "CC-IN2P3"
JobBatchName = "prod5b.proc"

ClusterId = 4212
ProcId = 0
JobStatus = 2
CtaoflowJob = "prod5b.merge.1.0"
CtaoflowSite = "CC-IN2P3"
JobBatchName = "prod5b.merge"

ClusterId = 4213
ProcId = 0
JobStatus = 1
CtaoflowJob = "prod5b.proc.1.0"
CtaoflowSite = "DESY"
JobBatchName = "prod5b.proc"
