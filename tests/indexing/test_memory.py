"""`indexing.memory.release_memory`: freed heap goes back to the system."""

from __future__ import annotations

from indexing.memory import release_memory


def test_freed_heap_goes_back_to_the_system() -> None:
    blocks = [bytes(4096) for _ in range(50_000)]  # ~200 MiB in glibc's heap (under its mmap threshold)
    kept = blocks[::64]  # live blocks all along the heap: free() alone cannot shrink it
    del blocks
    before, after = release_memory()
    assert before - after > 100, (before, after)
    assert len(kept) == 782
