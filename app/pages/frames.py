"""Placeholder: being built."""

import streamlit as st

st.title("frames")
st.info("This page is being built.")
