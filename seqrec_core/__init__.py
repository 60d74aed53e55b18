"""seqrec_core: sequential-recommendation analysis as a library (no streamlit here)."""
from seqrec_core.errors import InputError

__version__ = "0.1.0"
__all__ = ["InputError", "__version__"]
