"""Kconfig (tree-sitter grammar), assembly and device trees (structure-aware line chunkers): chunks named
by what they define, and symbols that `find_symbol` finds, through a real index too."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from indexing.chunker import parse_source
from indexing.config import EmbeddingSettings, IndexSettings
from indexing.languages import detect_language
from indexing.service import WorkspaceIndex

LIMITS = IndexSettings().parse_limits()

KCONFIG = """\
# SPDX-License-Identifier: GPL-2.0
menu "Ring buffers"

config RING_BUFFER
\tbool "Ring buffer support"
\tdepends on HAS_IOMEM && !UML
\tselect IRQ_WORK if SMP
\tdefault y
\thelp
\t  Say Y here.

menuconfig RING_STATS
\ttristate "Statistics"
\timply DEBUG_FS

if RING_STATS
config RING_STATS_VERBOSE
\tdef_bool n
endif

choice
\tprompt "Ring size"
config RING_SMALL
\tbool "small"
endchoice

endmenu
"""

ASM = """\
/* SPDX-License-Identifier: GPL-2.0 */
#include <linux/linkage.h>

\t.macro\tsave_regs, tmp
\tpush %rbx
\t.endm

/*
 * ring_copy - copy a ring slot.
 */
SYM_FUNC_START(ring_copy)
\tsave_regs %rax
\tcall memcpy
.Lloop:
\tjmp .Lloop
\tRET
SYM_FUNC_END(ring_copy)
EXPORT_SYMBOL(ring_copy)

\t.globl ring_fill
ring_fill:
\tbl memset
\tret
\t.size ring_fill, .-ring_fill
"""

DTS = """\
/dts-v1/;
#include "board.dtsi"

/ {
\tmodel = "Ring board";

\tsoc {
\t\t/* The console. */
\t\tuart0: serial@10000000 {
\t\t\tcompatible = "ns16550a";
\t\t\tclocks = <&refclk>;
\t\t};
\t};
};

&uart0 {
\tstatus = "okay";
};
"""


def _parse(path: str, text: str):  # type: ignore[no-untyped-def]
    language = detect_language(path)
    return parse_source(path, text, language, LIMITS)


def test_languages_of_kconfig_assembly_and_device_tree_files() -> None:
    assert detect_language("drivers/net/Kconfig") == "kconfig"
    assert detect_language("arch/arm64/Kconfig.platforms") == "kconfig"
    assert detect_language("arch/x86/lib/memcpy_64.S") == "asm"
    assert detect_language("boot/start.s") == "asm"
    assert detect_language("arch/arm64/boot/dts/arm/juno.dts") == "devicetree"
    assert detect_language("arch/arm/boot/dts/imx6q.dtsi") == "devicetree"


def test_kconfig_one_chunk_per_entry_named_by_its_symbol() -> None:
    result = _parse("ring/Kconfig", KCONFIG)
    named = [(c.kind, c.name, c.parents, c.start_line, c.end_line) for c in result.chunks if c.name]
    assert named == [
        ("config", "RING_BUFFER", ("Ring buffers",), 4, 10),
        ("config", "RING_STATS", ("Ring buffers",), 12, 14),
        ("config", "RING_STATS_VERBOSE", ("Ring buffers",), 17, 18),
        ("choice", "Ring size", ("Ring buffers",), 21, 25),
    ]
    assert result.chunks[1].signature == "config RING_BUFFER"
    definitions = {s.name for s in result.symbols if s.role == "definition"}
    assert {"RING_BUFFER", "CONFIG_RING_BUFFER", "RING_SMALL", "CONFIG_RING_SMALL"} <= definitions
    references = [s.name for s in result.symbols if s.role == "reference"]
    assert references == ["HAS_IOMEM", "UML", "IRQ_WORK", "SMP", "DEBUG_FS", "RING_STATS"]  # not y, n


def test_assembly_cut_at_linkage_macros_global_labels_and_macros() -> None:
    result = _parse("ring/copy.S", ASM)
    chunks = [(c.kind, c.name, c.start_line, c.end_line) for c in result.chunks]
    assert chunks == [
        ("module", "", 1, 2),
        ("macro", "save_regs", 4, 6),
        ("function", "ring_copy", 8, 17),  # with the comment above it, to SYM_FUNC_END
        ("module", "", 18, 20),
        ("function", "ring_fill", 21, 24),  # to its .size
    ]
    assert result.chunks[2].signature == "SYM_FUNC_START(ring_copy)"
    assert [(s.name, s.role, s.line) for s in result.symbols] == [
        ("save_regs", "definition", 4),
        ("ring_copy", "definition", 11),
        ("memcpy", "reference", 13),
        ("ring_fill", "definition", 21),
        ("memset", "reference", 22),
    ]


def test_device_tree_one_chunk_per_node_with_labels_and_references() -> None:
    small = _parse("ring/board.dts", DTS)
    assert [(c.kind, c.name, c.parents, c.start_line, c.end_line) for c in small.chunks] == [
        ("module", "", (), 1, 2),
        ("node", "/", (), 4, 14),
        ("node", "&uart0", (), 16, 18),
    ]
    symbols = [(s.name, s.kind, s.role, s.line, s.container) for s in small.symbols]
    assert ("serial@10000000", "node", "definition", 9, "/.soc") in symbols
    assert ("uart0", "label", "definition", 9, "/.soc") in symbols
    assert ("refclk", "label", "reference", 11, "/.soc.serial@10000000") in symbols
    assert ("uart0", "label", "reference", 16, "") in symbols

    tight = parse_source("ring/board.dts", DTS, "devicetree", dataclasses.replace(LIMITS, chunk_max_lines=6))
    nodes = [(c.name, c.parents, c.start_line, c.end_line) for c in tight.chunks if c.kind == "node"]
    assert nodes == [
        ("/", (), 4, 6),  # a large node's own lines up to its first child
        ("soc", ("/",), 7, 7),
        ("serial@10000000", ("/", "soc"), 8, 12),  # the comment above it included
        ("&uart0", (), 16, 18),
    ]


def test_kconfig_and_device_tree_symbols_are_found_in_a_real_index(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "ring").mkdir(parents=True)
    (root / "ring" / "Kconfig").write_text(KCONFIG)
    (root / "ring" / "copy.S").write_text(ASM)
    (root / "ring" / "board.dts").write_text(DTS)
    index = WorkspaceIndex(
        root,
        IndexSettings(embedding=EmbeddingSettings(provider="none")),
        cache_dir=tmp_path / "cache",
        env={},
    )
    index.index()
    (config,) = index.find_symbols("CONFIG_RING_STATS", role="definition")
    assert (config.path, config.line) == ("ring/Kconfig", 12)
    (function,) = index.find_symbols("ring_fill", role="definition")
    assert (function.path, function.line) == ("ring/copy.S", 21)
    assert {s.path for s in index.find_symbols("uart0")} == {"ring/board.dts"}
    hits = index.search("RING_STATS_VERBOSE", limit=3)
    assert hits and hits[0].path == "ring/Kconfig"
