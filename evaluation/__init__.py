"""Evaluation of retrieval (`retrieval.py`) and answers (`answers.py`), called by the CLI and bench/.

Datasets are read at load time (KorQuAD is never rewritten); the pipeline to evaluate is built
by the caller (`make_pipeline=Pipeline`), so this package imports none of app/.
"""
