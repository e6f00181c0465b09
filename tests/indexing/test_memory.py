"""`indexing.memory`: freed heap goes back to the system; a frozen heap waits out collections."""

from __future__ import annotations

import gc
import weakref

from indexing.memory import heap_frozen, release_memory


def test_freed_heap_goes_back_to_the_system() -> None:
    blocks = [bytes(4096) for _ in range(50_000)]  # ~200 MiB in glibc's heap (under its mmap threshold)
    kept = blocks[::64]  # live blocks all along the heap: free() alone cannot shrink it
    del blocks
    before, after = release_memory()
    assert before - after > 100, (before, after)
    assert len(kept) == 782


def test_a_frozen_heap_is_left_alone_by_collections_and_collected_again_after() -> None:
    class Node:
        pass

    node = Node()
    node.cycle = node  # type: ignore[attr-defined]  # only the cyclic collector can free it
    alive = weakref.ref(node)
    with heap_frozen():
        del node
        gc.collect()
        assert alive() is not None  # a full collection during the block does not look at it
    gc.collect()
    assert alive() is None  # after the block it is collected as before: nothing leaks
