ClusterId = 4211
ProcId = 9
JobStatus = 4
ExitBySignal = false
ExitCode = 0
CtaoflowJob = "prod5b.proc.10.0"
CtaoflowSite = "CC-IN2P3"
JobBatchName = "prod5b.proc"

ClusterId = 4211
ProcId = 10
JobStatus = 4
ExitBySignal = false
ExitCode = 3
CtaoflowJob = "prod5b.proc.11.0"
CtaoflowSite = "CC-IN2P3"
JobBatchName = "prod5b.proc"

ClusterId = 4211
ProcId = 11
JobStatus = 4
ExitBySignal = true
ExitSignal = 9
CtaoflowJob = "prod5b.proc.12.0"
CtaoflowSite = "CC-IN2P3"
JobBatchName = "prod5b.proc"

ClusterId = 4211
ProcId = 12
JobStatus = 3
RemoveReason = "cancelled by ctaoflow"
CtaoflowJob = "prod5b.proc.13.0"
CtaoflowSite = "CC-IN2P3"
JobBatchName = "prod5b.proc"

ClusterId = 4211
ProcId = 13
JobStatus = 3
RemoveReason = "The job attribute PeriodicRemove expression '(JobStatus == 2) && (time() - JobCurrentStartDate > MaxRuntime)' evaluated to TRUE"
CtaoflowJob = "prod5b.proc.14.0"
CtaoflowSite = "CC-IN2P3"
JobBatchName = "prod5b.proc"

ClusterId = 4210
ProcId = 0
JobStatus = 4
ExitBySignal = false
ExitCode = 0
CtaoflowJob = "prod5b.sim.1.0"
CtaoflowSite = "CC-IN2P3"
JobBatchName = "prod5b.sim"
