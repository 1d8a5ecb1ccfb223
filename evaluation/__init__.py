"""Evaluation of retrieval (`retrieval.py`) and answers (`answers.py`), called by the CLI and bench/.

Question sets come from `inputs.py` (JSONL corpus + QA, KorQuAD) or `docs.py` (a folder of real
documents ingested in place, gold ids naming its files or pages).

What an employee reads is scored by `longform.py`; `baselines.py` answers the same questions from
the same hits without chulcheo's answering stage (LangChain's stuff chain lives in
`langchain_stuff.py`, loaded only when that baseline runs).

Datasets are read at load time (KorQuAD is never rewritten); the pipeline to evaluate is built
by the caller (`make_pipeline=Pipeline`), so this package imports none of app/.
"""
