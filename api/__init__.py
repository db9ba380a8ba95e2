"""The incident API (FastAPI) arrives with issue 7; it will import schemas/, sinks/ and
operators/, never flows/."""
