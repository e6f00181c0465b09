"""The learned re-scoring of the fused top candidates (`indexing.ranking.rescore`): none yet."""

VERSION = 0
TOP = 30  # candidates re-scored, in the hand-weighted order
COEFFICIENTS: dict[str, float] = {
    "base": 1.0,
}
