"""Why a sequence model recommends what it does: attention maps, Captum attributions per history event,
counterfactual re-scoring and the planted-pair truth check (long-range statistics and faithfulness curves live
in ``longrange`` and ``faithfulness``). Everything returns data; figures are built in ``seqrec_core.viz``."""
from seqrec_core.explain.attention import AttentionMaps, get_attention, mean_attention_distance
from seqrec_core.explain.attribution import METHODS, Attribution, attribute, attribute_batch, attribute_batch_full
from seqrec_core.explain.counterfactual import rescore_edited
from seqrec_core.explain.engines import IG_BASELINES
from seqrec_core.explain.planted import get_planted_pair_check

__all__ = ["IG_BASELINES", "METHODS", "AttentionMaps", "Attribution", "attribute", "attribute_batch",
           "attribute_batch_full", "get_attention", "get_planted_pair_check", "mean_attention_distance",
           "rescore_edited"]
