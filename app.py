"""Entry point: the page navigation and the sidebar that shows which dataset and run are in use."""
import streamlit as st

from seqrec_core import __version__
from ui import links, state
from ui.cpu_share import share_cores_with_jobs
from ui.demo import ensure_demo_run
from ui.sidebar import render_sidebar
from ui.warmup import warm

# The toolbar shows only this About entry (.streamlit/config.toml: toolbarMode "minimal"), no developer chrome
ABOUT = (f"**SeqRec Lens {__version__}**: an analysis dashboard for sequential recommendation: the rhythms in a "
         "behaviour log, a Transformer recommender trained on it, honest baselines, explanations and per-user "
         "recommendations. The project's README.md says how to start it, the command line "
         "(`python -m seqrec_core --help`) and how training shares the CPU.")
st.set_page_config(page_title="SeqRec Lens", page_icon="🔭", layout="wide", menu_items={"About": ABOUT})

PAGES = [
    st.Page("app_pages/0_Home.py", title="Home", default=True),
    st.Page("app_pages/1_Data.py", title="Data", url_path="Data"),
    st.Page("app_pages/2_Patterns.py", title="Patterns", url_path="Patterns"),
    st.Page("app_pages/3_Train.py", title="Train", url_path="Train"),
    st.Page("app_pages/4_Evaluate.py", title="Evaluate", url_path="Evaluate"),
    st.Page("app_pages/5_Explain.py", title="Explain", url_path="Explain"),
    st.Page("app_pages/6_Embeddings.py", title="Embeddings", url_path="Embeddings"),
    st.Page("app_pages/7_Recommendations.py", title="Recommendations", url_path="Recommendations"),
    st.Page("app_pages/8_Compare.py", title="Compare", url_path="Compare"),
]

warm("pages")  # once per server process, in the background
page = st.navigation(PAGES)
links.restore_from_link()  # a link naming a run opens its data and run in a fresh session
state.get_dataset()  # autoloads the demo under `make demo`
ensure_demo_run()
render_sidebar()
share_cores_with_jobs()  # the dashboard's live work computes with the cores its running jobs leave free
page.run()
