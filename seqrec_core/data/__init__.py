"""Loading, validating, filtering and splitting behaviour logs."""
from seqrec_core.data.sequences import SequenceData, Split, Vocab, build_sequences, fingerprint_events

__all__ = ["SequenceData", "Split", "Vocab", "build_sequences", "fingerprint_events"]
