"""Plotly figure builders: each takes computed results and returns a themed go.Figure (no streamlit here).

Render with ``st.plotly_chart(fig, theme=None)`` to keep the house theme from :mod:`seqrec_core.viz.theme`.
"""
from seqrec_core.viz.plot_data import (
                                       plot_events_over_time,
                                       plot_item_popularity,
                                       plot_quality_report,
                                       plot_sequence_lengths,
)
from seqrec_core.viz.plot_evaluation import (
                                       plot_metric_by_history_length,
                                       plot_metric_comparison,
                                       plot_rank_distribution,
)
from seqrec_core.viz.plot_recommendations import plot_topk_scores, plot_user_timeline
from seqrec_core.viz.plot_training import plot_live_loss, plot_training_curves
from seqrec_core.viz.theme import apply_theme, empty_figure

__all__ = [
    "apply_theme", "empty_figure",
    "plot_sequence_lengths", "plot_events_over_time", "plot_item_popularity", "plot_quality_report",
    "plot_training_curves", "plot_live_loss",
    "plot_metric_comparison", "plot_rank_distribution", "plot_metric_by_history_length",
    "plot_user_timeline", "plot_topk_scores",
]
