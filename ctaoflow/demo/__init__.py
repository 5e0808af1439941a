"""The demo production's inputs and payload: small, real files and programs."""
