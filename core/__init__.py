"""The pure rules every layer shares: errors people read, seeds, limits, requests, the data folder.

No torch, no streamlit, no SQL and no imports from engine, storage, exports or studio, so any layer may
import it and a page or a command line that imports only this starts in a moment.
"""
