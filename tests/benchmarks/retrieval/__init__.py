"""Retrieval evaluation on real repositories: pinned registry packages, annotated queries, NDCG."""
