"""Loading, validating, filtering and splitting behaviour logs."""
from seqrec_core.data.loaders import FORMATS, detect_format, load_events, load_events_bytes, read_raw_table
from seqrec_core.data.prep import DropStep, PrepOptions, QualityReport, prepare_events
from seqrec_core.data.schema import ColumnMap, detect_columns
from seqrec_core.data.sequences import SequenceData, Split, Vocab, build_sequences, fingerprint_events
from seqrec_core.data.summary import DataSummary, get_data_summary
from seqrec_core.data.synthetic import DemoTruth, make_demo_events

__all__ = ["FORMATS", "ColumnMap", "DataSummary", "DemoTruth", "DropStep", "PrepOptions", "QualityReport",
           "SequenceData", "Split", "Vocab", "build_sequences", "detect_columns", "detect_format",
           "fingerprint_events", "get_data_summary", "load_events", "load_events_bytes", "make_demo_events",
           "prepare_events", "read_raw_table"]
