"""Background work: what a job is (:mod:`.spec`), the train job (:mod:`.train`) and the claim on its run folder
(:mod:`.claim`), the analysis job (:mod:`seqrec_core.analysis.job`), their progress files (:mod:`.progress`) and
the runner that starts them as subprocesses of the CLI (:mod:`.runner`)."""
from seqrec_core.jobs.claim import claim_run_dir
from seqrec_core.jobs.train import build_job_model, job_options, run_train_spec, run_training_job, train_worker

__all__ = ["build_job_model", "claim_run_dir", "job_options", "run_train_spec", "run_training_job", "train_worker"]
