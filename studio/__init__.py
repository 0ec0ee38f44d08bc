"""The Streamlit studio: thin pages over storage (the library) and studio.actions (engine jobs)."""
