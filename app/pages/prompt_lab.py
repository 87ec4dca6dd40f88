"""Placeholder: being built."""

import streamlit as st

st.title("prompt_lab")
st.info("This page is being built.")
