"""Entry point: the page navigation and the sidebar that shows which dataset and run are in use."""
import streamlit as st

from ui import links, state
from ui.demo import ensure_demo_run
from ui.sidebar import render_sidebar

st.set_page_config(page_title="SeqRec Lens", page_icon="🔭", layout="wide")

PAGES = [
    st.Page("pages/0_Home.py", title="Home", default=True),
    st.Page("pages/1_Data.py", title="Data"),
    st.Page("pages/2_Patterns.py", title="Patterns"),
    st.Page("pages/3_Train.py", title="Train"),
    st.Page("pages/4_Evaluate.py", title="Evaluate"),
    st.Page("pages/5_Explain.py", title="Explain"),
    st.Page("pages/6_Embeddings.py", title="Embeddings"),
    st.Page("pages/7_Recommendations.py", title="Recommendations"),
    st.Page("pages/8_Compare.py", title="Compare"),
]

page = st.navigation(PAGES)
links.restore_from_link()  # a link naming a run opens its data and run in a fresh session
state.get_dataset()  # autoloads the demo under `make demo`
ensure_demo_run()
render_sidebar()
page.run()
