"""Draw the book's architecture diagrams as SVG: ``python tools/diagrams.py`` (``make diagrams``).

Each diagram is hand-placed SVG text written by a function below, so the output is byte-for-byte
reproducible and diffs as text; ``tests/book/test_diagrams.py`` checks that the committed files in
``book/figures/`` equal what this script writes. ``--check`` exits 1 when they differ.

Every drawing is at most ``MAX_WIDTH`` user units wide and no text is smaller than
``MIN_FONT``, so at the book's column width (a figure is drawn 672 px wide there, measured in
Chromium at a 1280 px window) the smallest text is 11.5 px. Each file carries its alt text as ``<title>``/``<desc>``; the chapters repeat it
in the ``:alt:`` of their ``figure`` directive.

Conventions drawn: batch-first shapes (B, H, T, Dh), keep-polarity masks (True = may attend).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "book" / "figures"
MAX_WIDTH = 760
MIN_FONT = 13
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
MONO = "DejaVu Sans Mono, Menlo, Consolas, monospace"

# (fill, stroke) per kind of block; the same colour means the same kind in every diagram.
EMBED = ("#e3f1dc", "#4f8a3c")
ATTN = ("#dceaf7", "#3b6ea5")
FFN = ("#fde8cf", "#b86e1f")
NORM = ("#fff5c4", "#a88f12")
HEAD = ("#efe2f5", "#7a4b94")
DATA = ("#f4f4f4", "#666666")
HEAD_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759")
RESIDUAL = "#2e8b57"
INK = "#222222"


@dataclass
class Svg:
    """A tiny SVG writer: boxes, arrows and text in user units (1 unit = 1 px at full width)."""

    width: int
    height: int
    title: str
    desc: str
    parts: list[str] = field(default_factory=list)

    def text(
        self,
        x: float,
        y: float,
        s: str,
        *,
        size: int = 14,
        anchor: str = "middle",
        weight: str = "normal",
        fill: str = INK,
        mono: bool = False,
        italic: bool = False,
        rotate: int = 0,
    ) -> None:
        """One line of text; ``_X`` or ``_{XY}`` write a subscript (e.g. ``W_Q``, ``d_{k}``),
        except in monospace text, which is code and shown as it is."""
        if size < MIN_FONT:
            raise ValueError(f"font size {size} < {MIN_FONT}: text would be illegible")
        style = ' font-style="italic"' if italic else ""
        if rotate:
            style += f' transform="rotate({rotate} {x:g} {y:g})"'
        self.parts.append(
            f'<text x="{x:g}" y="{y:g}" font-size="{size}" text-anchor="{anchor}" '
            f'font-family="{MONO if mono else FONT}" font-weight="{weight}" fill="{fill}"{style}>'
            f"{escape(s) if mono else _rich(s, size)}</text>"
        )

    def lines(self, x: float, y: float, lines: Sequence[str], *, size: int = 14, **kw) -> None:
        """Lines centred vertically on ``y``."""
        step = size * 1.3
        top = y - step * (len(lines) - 1) / 2 + size * 0.35
        for i, line in enumerate(lines):
            self.text(x, top + i * step, line, size=size, **kw)

    def rect(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        colours: tuple[str, str],
        *,
        rx: float = 6,
        width: float = 1.5,
        dash: str = "",
    ) -> None:
        fill, stroke = colours
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="{rx:g}" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{width:g}"{extra}/>'
        )

    def box(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        lines: Sequence[str],
        colours: tuple[str, str],
        *,
        size: int = 14,
        mono: bool = False,
        weight: str = "normal",
    ) -> None:
        """A rounded box with centred lines of text; (x, y) is the top-left corner."""
        self.rect(x, y, w, h, colours)
        self.lines(x + w / 2, y + h / 2, lines, size=size, mono=mono, weight=weight)

    def line(
        self,
        points: Sequence[tuple[float, float]],
        *,
        colour: str = INK,
        width: float = 1.5,
        arrow: bool = True,
        dash: str = "",
    ) -> None:
        """A polyline, with an arrow head at its last point unless ``arrow`` is False."""
        pts = " ".join(f"{x:g},{y:g}" for x, y in points)
        marker = f' marker-end="url(#{_marker_id(colour)})"' if arrow else ""
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="{width:g}"'
            f' stroke-linejoin="round"{marker}{extra}/>'
        )

    def arrow(self, x1: float, y1: float, x2: float, y2: float, **kw) -> None:
        self.line([(x1, y1), (x2, y2)], **kw)

    def plus(self, x: float, y: float, *, r: float = 11, colour: str = RESIDUAL) -> None:
        """The residual addition: a circled plus centred on (x, y)."""
        self.parts.append(
            f'<circle cx="{x:g}" cy="{y:g}" r="{r:g}" fill="#ffffff" stroke="{colour}" '
            'stroke-width="2"/>'
        )
        self.line([(x - r + 4, y), (x + r - 4, y)], colour=colour, width=2, arrow=False)
        self.line([(x, y - r + 4), (x, y + r - 4)], colour=colour, width=2, arrow=False)

    def grid(
        self,
        x: float,
        y: float,
        cells: Sequence[Sequence[str | None]],
        *,
        cell: float = 24,
        stroke: str = "#555555",
    ) -> None:
        """A matrix of cells, each filled with a colour (None = white)."""
        for i, row in enumerate(cells):
            for j, fill in enumerate(row):
                self.parts.append(
                    f'<rect x="{x + j * cell:g}" y="{y + i * cell:g}" width="{cell:g}" '
                    f'height="{cell:g}" fill="{fill or "#ffffff"}" stroke="{stroke}" '
                    'stroke-width="1"/>'
                )

    def render(self) -> str:
        if self.width > MAX_WIDTH:
            raise ValueError(f"width {self.width} > {MAX_WIDTH}: text would shrink below 11 px")
        colours = sorted({c for p in self.parts for c in _markers_used(p)})
        markers = "".join(
            f'<marker id="{_marker_id(c)}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            f'fill="{c}"/></marker>'
            for c in colours
        )
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
            f'viewBox="0 0 {self.width} {self.height}" role="img" '
            'aria-labelledby="title desc">\n'
            f'<title id="title">{escape(self.title)}</title>\n'
            f'<desc id="desc">{escape(self.desc)}</desc>\n'
            f"<defs>{markers}</defs>\n"
            f'<rect width="{self.width}" height="{self.height}" fill="#ffffff"/>\n'
        )
        return head + "\n".join(self.parts) + "\n</svg>\n"


def _marker_id(colour: str) -> str:
    return "arrow-" + colour.lstrip("#")


def _markers_used(part: str) -> list[str]:
    if 'marker-end="url(#arrow-' not in part:
        return []
    return ["#" + part.split('marker-end="url(#arrow-', 1)[1].split(")", 1)[0]]


def _rich(s: str, size: int) -> str:
    """Escape ``s`` and turn ``_X`` / ``_{XY}`` into lowered, smaller tspans."""
    out, i = [], 0
    sub = max(MIN_FONT, round(size * 0.8))  # no smaller than any other text
    while i < len(s):
        if s[i] == "_" and i + 1 < len(s) and s[i - 1 : i].strip():
            if s[i + 1] == "{":
                end = s.index("}", i)
                body, i = s[i + 2 : end], end + 1
            else:
                body, i = s[i + 1], i + 2
            out.append(f'<tspan dy="4" font-size="{sub}">{escape(body)}</tspan><tspan dy="-4">')
            out.append("\u200b</tspan>")
        else:
            out.append(escape(s[i]))
            i += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# The diagrams.
# ---------------------------------------------------------------------------------------------


STACK_LAYER, STACK_GAP, STACK_PAD, STACK_LABEL = 46, 16, 12, 20


def _stack_height(n_layers: int) -> int:
    return 2 * STACK_PAD + STACK_LABEL + n_layers * STACK_LAYER + (n_layers - 1) * STACK_GAP


def _stack(
    svg: Svg,
    x: float,
    w: float,
    top: float,
    layers: Sequence[tuple[Sequence[str], tuple[str, str]]],
    *,
    label: str = "× N layers",
) -> float:
    """A repeated block of sub-layers, listed top to bottom (data flows upwards).

    Returns the y of the block's bottom edge.
    """
    height = _stack_height(len(layers))
    svg.rect(x, top, w, height, ("#fafafa", "#888888"), rx=10, dash="5,4")
    svg.text(x + w - 8, top + height - 8, label, size=13, anchor="end", italic=True)
    y = top + STACK_PAD
    for i, (lines, colours) in enumerate(layers):
        svg.box(x + 10, y, w - 20, STACK_LAYER, lines, colours, size=14)
        if i:
            svg.arrow(x + w / 2, y - 1, x + w / 2, y - STACK_GAP + 2)
        y += STACK_LAYER + STACK_GAP
    return top + height


def transformer_architectures() -> Svg:
    svg = Svg(
        760,
        470,
        "Three transformer architectures",
        "Three stacks side by side, data flowing upwards. Encoder-only (BERT): token embedding "
        "plus positions, then N layers of bidirectional self-attention and feed-forward, then a "
        "task head. Encoder-decoder (original transformer, T5): the encoder stack as before; the "
        "decoder stack has masked (causal) self-attention, cross-attention whose keys and values "
        "come from the encoder output, and feed-forward, then a linear layer and softmax over "
        "the vocabulary. Decoder-only (GPT): N layers of masked self-attention and feed-forward, "
        "then a language-model head that predicts the next token. Every sub-layer sits inside a "
        "residual connection with layer normalization.",
    )
    enc = [(["feed-forward"], FFN), (["self-attention", "(every token)"], ATTN)]
    dec = [
        (["feed-forward"], FFN),
        (["cross-attention", "(K, V: encoder)"], ATTN),
        (["masked", "self-attention"], ATTN),
    ]
    dec_only = [(["feed-forward"], FFN), (["masked", "self-attention"], ATTN)]
    panels = [
        ("Encoder-only", "BERT", 5, 210),
        ("Encoder–decoder", "original transformer, T5", 225, 310),
        ("Decoder-only", "GPT", 545, 210),
    ]
    for name, example, x, w in panels:
        svg.text(x + w / 2, 22, name, size=16, weight="bold")
        svg.text(x + w / 2, 42, example, size=14, italic=True)
        svg.rect(x, 54, w, 410, ("#ffffff", "#cccccc"), rx=12)
    head_y, embed_y, gap = 68, 380, 26

    def column(x: float, w: float, layers, head: Sequence[str], source: str) -> float:
        """One column: source text, embedding, stack, head. Returns the stack's top y."""
        cx = x + w / 2
        svg.text(cx, 452, source, size=14, mono=True)
        svg.box(x, embed_y, w, 46, ["token embedding", "+ positions"], EMBED)
        svg.arrow(cx, 438, cx, embed_y + 47)
        bottom = embed_y - gap
        top = bottom - _stack_height(len(layers))
        _stack(svg, x, w, top, layers)
        svg.arrow(cx, embed_y, cx, bottom + 1)
        if head:
            svg.box(x, head_y, w, 46, head, HEAD)
            svg.arrow(cx, top, cx, head_y + 47)
        return top

    column(17, 186, enc, ["task head", "(masked token / class)"], "tokens")
    # Encoder–decoder: two stacks in one panel; the encoder output feeds cross-attention.
    enc_x, dec_x, col_w = 235, 388, 138
    enc_top = column(enc_x, col_w, enc, [], "source")
    dec_top = column(dec_x, col_w, dec, ["linear + softmax", "→ next token"], "target so far")
    cross_y = dec_top + STACK_PAD + STACK_LAYER + STACK_GAP + STACK_LAYER / 2
    svg.text(enc_x + col_w / 2, enc_top - 34, "encoder output", size=13, italic=True)
    svg.line(
        [
            (enc_x + col_w / 2, enc_top),
            (enc_x + col_w / 2, enc_top - 22),
            (dec_x - 6, enc_top - 22),
            (dec_x - 6, cross_y),
            (dec_x + 9, cross_y),
        ],
        colour=ATTN[1],
        width=2,
    )
    column(557, 186, dec_only, ["LM head", "→ next token"], "tokens so far")
    return svg


def decoder_only() -> Svg:
    svg = Svg(
        760,
        600,
        "A decoder-only language model (GPT), with shapes",
        "Token ids of shape (B, T) are looked up in the token embedding matrix (V, D) and added "
        "to position embeddings, giving x of shape (B, T, D). N pre-LN decoder blocks follow, "
        "each: LayerNorm, causal multi-head self-attention, residual add; LayerNorm, "
        "feed-forward, residual add. A final LayerNorm and the LM head, a linear layer that "
        "shares (ties) its weight with the token embedding, give logits of shape (B, T, V). "
        "On the right, an example: the inputs 'the cat sat on' and the targets shifted by one, "
        "'cat sat on the': the output at position t is trained to predict token t + 1.",
    )
    x, w, cx = 30, 330, 195
    svg.text(cx, 592, "token ids  (B, T)", size=14, mono=True)
    svg.box(x, 520, w, 46, ["token embedding E  (V, D)", "+ position embedding  (T, D)"], EMBED)
    svg.arrow(cx, 578, cx, 567)
    svg.text(cx + 10, 502, "x  (B, T, D)", size=14, mono=True, anchor="start")
    # One pre-LN block, drawn explicitly.
    top, bottom = 150, 486
    svg.rect(x, top, w, bottom - top, ("#fafafa", "#888888"), rx=10, dash="5,4")
    svg.text(x + w - 8, bottom - 8, "× N blocks", size=13, anchor="end", italic=True)
    svg.arrow(cx, 520, cx, bottom + 1)
    bw = 200
    svg.box(cx - bw / 2, 436, bw, 30, ["LayerNorm"], NORM)
    svg.box(cx - bw / 2, 368, bw, 46, ["causal multi-head", "self-attention"], ATTN)
    svg.plus(cx, 338)
    svg.box(cx - bw / 2, 282, bw, 30, ["LayerNorm"], NORM)
    svg.box(cx - bw / 2, 212, bw, 46, ["feed-forward", "D → 4D → D"], FFN)
    svg.plus(cx, 182)
    svg.arrow(cx, bottom, cx, 467)
    svg.arrow(cx, 436, cx, 415)
    svg.arrow(cx, 368, cx, 350)
    svg.arrow(cx, 327, cx, 313)
    svg.arrow(cx, 282, cx, 259)
    svg.arrow(cx, 212, cx, 194)
    # Residual paths: the stream goes round each sub-layer untouched and is added back.
    rx = x + 30
    svg.line([(cx, 478), (rx, 478), (rx, 338), (cx - 12, 338)], colour=RESIDUAL, width=2)
    svg.line([(cx, 322), (rx, 322), (rx, 182), (cx - 12, 182)], colour=RESIDUAL, width=2)
    svg.box(cx - bw / 2, 100, bw, 30, ["final LayerNorm"], NORM)
    svg.arrow(cx, 171, cx, 131)
    svg.box(x, 30, w, 46, ["LM head: logits = x Eᵀ", "(weights tied to the embedding)"], HEAD)
    svg.arrow(cx, 100, cx, 77)
    svg.text(cx, 20, "logits  (B, T, V)", size=14, mono=True)
    # Tied weights: a dashed link between the embedding and the head.
    svg.line(
        [(x + w, 543), (x + w + 18, 543), (x + w + 18, 53), (x + w + 1, 53)],
        colour=HEAD[1],
        dash="6,4",
    )
    # The next-token example.
    ex = 420
    svg.text(ex + 150, 196, "position t predicts token t + 1", size=15, weight="bold")
    svg.text(ex + 150, 236, "targets = inputs shifted left", size=14, italic=True)
    inputs, targets = ["the", "cat", "sat", "on"], ["cat", "sat", "on", "the"]
    for i, (a, b) in enumerate(zip(inputs, targets, strict=True)):
        bx = ex + 3 + i * 76
        svg.box(bx, 250, 66, 36, [b], HEAD, mono=True)
        svg.box(bx, 380, 66, 36, [a], DATA, mono=True)
        svg.arrow(bx + 33, 380, bx + 33, 287)
        svg.text(bx + 33, 436, f"t={i}", size=13)
    svg.text(ex + 150, 460, "inputs", size=14, italic=True)
    svg.lines(
        ex + 150,
        520,
        [
            "the causal mask lets position t",
            "see tokens 0 … t only; generation",
            "appends the prediction and repeats",
        ],
        size=14,
    )
    return svg


def attention_shapes() -> Svg:
    svg = Svg(
        760,
        510,
        "Scaled dot-product attention, step by step with shapes",
        "Queries Q of shape (B, H, T, Dh) and keys K of shape (B, H, S, Dh) are multiplied, "
        "Q times K transposed, giving scores of shape (B, H, T, S), one row per query and one "
        "column per key. The scores are scaled by one over the square root of Dh, positions "
        "where the mask is False are set to minus infinity, and softmax over the last axis S "
        "turns each row into weights that sum to one. The weights, still (B, H, T, S), "
        "multiply the values V of shape (B, H, S, Dv), giving the output (B, H, T, Dv): one "
        "weighted average of value vectors per query.",
    )
    cx, bw, note_x = 260, 240, 400
    svg.box(40, 16, 190, 50, ["Q  queries", "(B, H, T, Dh)"], ATTN, mono=True)
    svg.box(290, 16, 190, 50, ["K  keys", "(B, H, S, Dh)"], ATTN, mono=True)
    svg.line([(135, 66), (135, 84), (220, 84), (220, 99)])
    svg.line([(385, 66), (385, 84), (300, 84), (300, 99)])
    svg.text(393, 88, "Kᵀ: (B, H, Dh, S)", size=13, mono=True, anchor="start", fill="#555555")
    steps = [
        (100, ["scores = Q Kᵀ", "(B, H, T, S)"], ATTN, "T·S·Dh multiply-adds per head"),
        (184, ["× 1/√Dh"], NORM, "keeps the scores' variance near 1"),
        (252, ["mask: False → −∞"], NORM, "keep polarity: True = may attend"),
        (320, ["softmax over S"], NORM, "each row sums to 1"),
    ]
    previous = None
    for y, lines, colours, note in steps:
        h = 54 if len(lines) == 2 else 38
        svg.box(cx - bw / 2, y, bw, h, lines, colours, mono=True)
        svg.text(note_x, y + h / 2 + 5, note, size=14, anchor="start")
        if previous is not None:
            svg.arrow(cx, previous, cx, y - 1)
        previous = y + h
    svg.arrow(cx, previous, cx, 399)
    svg.text(cx - 10, 384, "weights (B, H, T, S)", size=13, mono=True, anchor="end", fill="#555555")
    svg.box(cx - bw / 2, 400, bw, 54, ["out = weights · V", "(B, H, T, Dv)"], ATTN, mono=True)
    svg.box(530, 400, 200, 54, ["V  values", "(B, H, S, Dv)"], ATTN, mono=True)
    svg.arrow(530, 427, cx + bw / 2 + 1, 427)
    svg.lines(
        cx + 120,
        480,
        ["T·S·Dv multiply-adds per head: one weighted", "average of the values for every query"],
        size=14,
    )
    return svg


def heads_split_merge() -> Svg:
    svg = Svg(
        760,
        410,
        "Splitting into heads and merging them back",
        "Top row, split_heads: a projected tensor of shape (B, T, D), drawn for T = 4 tokens and "
        "D = 8 features coloured by the head they belong to, is viewed as (B, T, H, Dh) with "
        "H = 4 heads of Dh = 2 features and transposed to (B, H, T, Dh): four separate T by Dh "
        "matrices. Each head runs scaled dot-product attention on its own. Bottom row, "
        "merge_heads: the head outputs (B, H, T, Dh) are transposed back to (B, T, H, Dh) and "
        "reshaped to (B, T, D), the heads side by side again, and the output projection W_O "
        "mixes them into (B, T, D).",
    )
    c = 18  # cell size
    T, H, Dh = 4, 4, 2
    coloured = [[HEAD_COLOURS[j // Dh] for j in range(H * Dh)] for _ in range(T)]
    gx, gap = 530, 18  # the heads group: H small (T, Dh) matrices side by side

    def heads_group(y: float) -> None:
        for h in range(H):
            x = gx + h * (Dh * c + gap)
            svg.grid(x, y, [[HEAD_COLOURS[h]] * Dh for _ in range(T)], cell=c)
            svg.text(x + Dh * c / 2, y + T * c + 18, f"head {h}", size=13)

    group_cx = gx + (H * Dh * c + (H - 1) * gap) / 2
    svg.text(20, 26, "split_heads", size=16, weight="bold", anchor="start", mono=True)
    svg.grid(30, 50, [[None] * 8 for _ in range(T)], cell=c)
    svg.text(102, 144, "x (B, T, D)", size=14, mono=True)
    svg.arrow(184, 86, 238, 86)
    svg.text(211, 76, "W_Q", size=14)
    svg.grid(250, 50, coloured, cell=c)
    svg.text(322, 144, "q (B, T, D)", size=14, mono=True)
    svg.arrow(404, 86, 518, 86)
    svg.lines(461, 62, [".view(B,T,H,Dh)", ".transpose(1,2)"], size=13, mono=True)
    heads_group(50)
    svg.text(group_cx, 26, "(B, H, T, Dh)", size=14, mono=True)
    # Attention runs per head; it joins the two rows.
    svg.arrow(group_cx, 158, group_cx, 236, colour=ATTN[1], width=2)
    svg.lines(
        group_cx - 10,
        197,
        ["scaled dot-product attention,", "each head on its own"],
        size=13,
        fill=ATTN[1],
        anchor="end",
    )
    svg.text(20, 226, "merge_heads", size=16, weight="bold", anchor="start", mono=True)
    heads_group(250)
    svg.text(group_cx, 362, "(B, H, T, Dh)", size=14, mono=True)
    svg.arrow(518, 286, 404, 286)
    svg.lines(461, 262, [".transpose(1,2)", ".reshape(B,T,D)"], size=13, mono=True)
    svg.grid(250, 250, coloured, cell=c)
    svg.text(322, 344, "concat (B, T, D)", size=14, mono=True)
    svg.arrow(238, 286, 184, 286)
    svg.text(211, 276, "W_O", size=14)
    svg.grid(30, 250, [["#b9a3c9"] * 8 for _ in range(T)], cell=c)
    svg.text(102, 344, "out (B, T, D)", size=14, mono=True)
    svg.lines(
        200,
        386,
        ["W_O mixes the heads: every output", "feature reads from every head"],
        size=13,
        italic=True,
    )
    return svg


def pre_post_ln() -> Svg:
    svg = Svg(
        760,
        610,
        "Post-LN and pre-LN transformer blocks",
        "Left, post-LN (the original 2017 transformer): the input goes through the attention "
        "sub-layer, is added to itself (residual), and the sum is layer-normalized; the same for "
        "the feed-forward sub-layer. The normalization sits on the residual path, so the "
        "gradient passes through a LayerNorm in every block; deep post-LN stacks need learning-"
        "rate warm-up. Right, pre-LN (GPT-2 and most current models): each sub-layer reads a "
        "layer-normalized copy of its input and its output is added to the untouched input, so "
        "the residual path (green) is an identity from the first block to the last; a final "
        "LayerNorm follows the whole stack.",
    )

    def column(x0: float, title: str, sub: str, pre: bool) -> None:
        cx, w = x0 + 170, 180
        svg.text(cx, 26, title, size=16, weight="bold")
        svg.text(cx, 46, sub, size=14, italic=True)
        svg.text(cx, 546, "x  (B, T, D)", size=14, mono=True)
        y = 528
        for name, colours in ((["multi-head", "self-attention"], ATTN), (["feed-forward"], FFN)):
            branch_top = y - 10
            svg.line([(cx, y), (cx, branch_top)], arrow=False)
            if pre:
                svg.box(cx - w / 2, branch_top - 82, w, 30, ["LayerNorm"], NORM)
                svg.box(cx - w / 2, branch_top - 150, w, 46, name, colours)
                svg.arrow(cx, branch_top, cx, branch_top - 51)
                svg.arrow(cx, branch_top - 82, cx, branch_top - 103)
                add_y = branch_top - 180
                svg.arrow(cx, branch_top - 150, cx, add_y + 12)
                svg.plus(cx, add_y)
                svg.line(
                    [
                        (cx, branch_top - 2),
                        (cx - 120, branch_top - 2),
                        (cx - 120, add_y),
                        (cx - 12, add_y),
                    ],
                    colour=RESIDUAL,
                    width=3,
                )
                y = add_y - 11
            else:
                svg.box(cx - w / 2, branch_top - 66, w, 46, name, colours)
                svg.arrow(cx, branch_top, cx, branch_top - 19)
                add_y = branch_top - 94
                svg.arrow(cx, branch_top - 66, cx, add_y + 12)
                svg.plus(cx, add_y)
                svg.line(
                    [
                        (cx, branch_top - 2),
                        (cx - 120, branch_top - 2),
                        (cx - 120, add_y),
                        (cx - 12, add_y),
                    ],
                    colour=RESIDUAL,
                    width=3,
                )
                svg.box(cx - w / 2, add_y - 62, w, 30, ["LayerNorm"], NORM)
                svg.arrow(cx, add_y - 11, cx, add_y - 31)
                y = add_y - 62
        if pre:
            svg.box(cx - w / 2, 66, w, 30, ["final LayerNorm"], NORM)
            svg.arrow(cx, y, cx, 97)
            svg.text(cx + w / 2 + 6, 86, "(once, after", size=13, anchor="start", italic=True)
            svg.text(cx + w / 2 + 6, 104, "the last block)", size=13, anchor="start", italic=True)
        else:
            svg.arrow(cx, y, cx, 80)
            svg.text(cx, 72, "to the next block", size=13, italic=True)

    column(0, "Post-LN", "original transformer (2017)", pre=False)
    column(380, "Pre-LN", "GPT-2 and most current models", pre=True)
    svg.line([(380, 60), (380, 590)], colour="#cccccc", arrow=False)
    svg.lines(
        170,
        584,
        ["a LayerNorm on the residual path:", "needs learning-rate warm-up"],
        size=13,
        fill="#8a1c1c",
        italic=True,
    )
    svg.lines(
        550,
        584,
        ["the green residual path is an identity", "from input to output"],
        size=13,
        fill=RESIDUAL,
        italic=True,
    )
    return svg


def mask_composition() -> Svg:
    svg = Svg(
        760,
        400,
        "Combining a causal mask and a padding mask",
        "Keep polarity: a filled cell is True and means the query (row) may attend to the key "
        "(column); an empty cell is False. Left, the causal mask of shape (T, S) for T = S = 5: "
        "lower-triangular, query t may see keys 0 to t. Middle, the padding mask of shape "
        "(B, 1, 1, S) for a batch of two sequences: the first has 5 real tokens, the second 3 "
        "real tokens and 2 padding tokens. Right, causal AND padding, broadcast to (B, 1, T, S): "
        "for the first sequence it equals the causal mask; for the second the last two key "
        "columns are empty too. Every row keeps at least key 0, so no row is fully masked.",
    )
    c, T = 24, 5
    on, off = "#3b6ea5", None
    causal = [[on if s <= t else off for s in range(T)] for t in range(T)]
    lengths = (5, 3)

    def axes(x: float, y: float, rows: bool = True) -> None:
        for s in range(T):
            svg.text(x + s * c + c / 2, y - 6, str(s), size=13)
            if rows:
                svg.text(x - 6, y + s * c + c / 2 + 5, str(s), size=13, anchor="end")

    x0, y0 = 48, 130
    svg.text(x0 + T * c / 2, 40, "causal", size=16, weight="bold")
    svg.text(x0 + T * c / 2, 60, "(T, S)", size=14, mono=True)
    svg.text(x0 + T * c / 2, 96, "key s →", size=13, italic=True)
    svg.text(x0 - 24, y0 + T * c / 2, "query t", size=13, italic=True, rotate=-90)
    axes(x0, y0)
    svg.grid(x0, y0, causal, cell=c)
    svg.text(218, y0 + T * c / 2 + 8, "∧", size=30)
    x1 = 262
    svg.text(x1 + T * c / 2, 40, "padding", size=16, weight="bold")
    svg.text(x1 + T * c / 2, 60, "(B, 1, 1, S)", size=14, mono=True)
    for b, n in enumerate(lengths):
        y = y0 + b * 70
        axes(x1, y, rows=False)
        svg.grid(x1, y, [[on if s < n else off for s in range(T)]], cell=c)
        svg.text(x1 + T * c + 8, y + c / 2 + 5, f"b={b}", size=13, anchor="start")
    svg.text(x1 + T * c / 2, y0 + 2 * 70 + 8, "b=1: 3 real tokens", size=13)
    svg.text(x1 + T * c / 2, y0 + 2 * 70 + 26, "+ 2 [PAD]", size=13)
    svg.text(450, y0 + T * c / 2 + 8, "=", size=30)
    x2 = 492
    svg.text(x2 + T * c + 10, 40, "combined: causal ∧ padding", size=16, weight="bold")
    svg.text(x2 + T * c + 10, 60, "(B, 1, T, S)", size=14, mono=True)
    for b, n in enumerate(lengths):
        x = x2 + b * (T * c + 24)
        svg.text(x + T * c / 2, 96, f"b={b}", size=13)
        axes(x, y0, rows=b == 0)
        svg.grid(
            x, y0, [[on if s <= t and s < n else off for s in range(T)] for t in range(T)], cell=c
        )
    # Legend.
    svg.grid(48, 300, [[on]], cell=c)
    svg.text(82, 317, "True: may attend (kept)", size=14, anchor="start")
    svg.grid(300, 300, [[off]], cell=c)
    svg.text(334, 317, "False: blocked (score → −∞, weight 0)", size=14, anchor="start")
    svg.lines(
        380,
        360,
        [
            "Broadcasting does the combining: axes of size 1 stretch to B and T.",
            "Rows 3 and 4 of b=1 are [PAD] queries: they still see keys 0–2, and the loss ignores them.",
        ],
        size=13,
    )
    return svg


def kv_cache() -> Svg:
    svg = Svg(
        760,
        530,
        "The KV cache during generation",
        "Generating the next token at step t = 4. Only the newest token x4 goes through the "
        "layer: the projections give one query q4, one key k4 and one value v4, each of shape "
        "(B, H, 1, Dh). The new key and value are appended as column 4 of the K cache and the V "
        "cache, which already hold the keys and values of positions 0 to 3 from earlier steps, "
        "so each cache grows to (B, H, t+1, Dh). The single query attends to every cached key: "
        "scores and softmax give weights of shape (B, H, 1, t+1), and their weighted average of "
        "the cached values is the output (B, H, 1, Dh), which leads to the logits of the next "
        "token. No causal mask is needed, because the cache holds only the past. Per token the "
        "cache stores 2 x layers x H x Dh numbers.",
    )
    c, dh, t = 22, 4, 5
    old, new = "#c9d7e6", "#e15759"
    svg.text(380, 24, "generating the next token: step t = 4", size=16, weight="bold")
    svg.box(10, 52, 130, 46, ["new token x₄", "(B, 1, D)"], DATA, mono=True)
    svg.arrow(140, 75, 169, 75)
    svg.box(170, 52, 150, 46, ["W_Q, W_K, W_V"], ATTN)
    # The caches: one column per position, positions 0-3 from earlier steps, 4 appended now.
    cache = [[old] * (t - 1) + [new] for _ in range(dh)]
    for name, x in (("K cache", 350), ("V cache", 590)):
        svg.grid(x, 150, cache, cell=c)
        svg.text(x - 8, 188, name, size=14, anchor="end", weight="bold")
        svg.text(x - 8, 208, "(B,H,t+1,Dh)", size=13, anchor="end", mono=True)
        for p in range(t):
            svg.text(x + p * c + c / 2, 254, str(p), size=13)
    svg.line([(320, 84), (449, 84), (449, 149)], colour=new, width=2)
    svg.text(457, 124, "k₄", size=14, anchor="start", mono=True)
    svg.line([(320, 64), (689, 64), (689, 149)], colour=new, width=2)
    svg.text(697, 124, "v₄", size=14, anchor="start", mono=True)
    # The new query: one column.
    svg.grid(180, 150, [[new] for _ in range(dh)], cell=c)
    svg.arrow(191, 98, 191, 149, colour=new, width=2)
    svg.text(172, 198, "q₄", size=14, anchor="end", mono=True)
    svg.text(191, 254, "(B,H,1,Dh)", size=13, mono=True)
    # Attention of the one query over the whole cache.
    svg.box(300, 300, 260, 54, ["q₄ · K cacheᵀ, softmax", "weights (B,H,1,t+1)"], NORM, mono=True)
    svg.line([(191, 262), (191, 327), (299, 327)])
    svg.arrow(394, 239, 394, 299)
    svg.box(300, 390, 260, 54, ["weights · V cache", "out (B,H,1,Dh)"], ATTN, mono=True)
    svg.arrow(430, 354, 430, 389)
    svg.line([(634, 239), (634, 417), (561, 417)])
    svg.arrow(430, 444, 430, 462)
    svg.text(430, 480, "→ logits of token 5; its id becomes x₅ at step t = 5", size=14)
    svg.lines(
        697, 327, ["no causal mask:", "the cache holds", "only the past"], size=13, italic=True
    )
    svg.lines(
        150,
        420,
        [
            "cache memory per token:",
            "2 × layers × H × Dh",
            "numbers (a key and a",
            "value per head and layer)",
        ],
        size=13,
    )
    svg.grid(200, 500, [[new]], cell=16)
    svg.text(224, 513, "computed at this step", size=13, anchor="start")
    svg.grid(420, 500, [[old]], cell=16)
    svg.text(444, 513, "kept from earlier steps", size=13, anchor="start")
    return svg


DIAGRAMS: dict[str, Callable[[], Svg]] = {
    "transformer_architectures": transformer_architectures,
    "decoder_only": decoder_only,
    "attention_shapes": attention_shapes,
    "heads_split_merge": heads_split_merge,
    "pre_post_ln": pre_post_ln,
    "mask_composition": mask_composition,
    "kv_cache": kv_cache,
}


def render_all() -> dict[str, str]:
    """File name -> SVG text, for every diagram."""
    return {f"{name}.svg": make().render() for name, make in DIAGRAMS.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    FIGURES.mkdir(parents=True, exist_ok=True)
    stale = []
    for name, text in render_all().items():
        path = FIGURES / name
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"out of date: {', '.join(stale)}; run `python tools/diagrams.py`", file=sys.stderr)
        return 1
    print(
        f"{len(DIAGRAMS)} diagrams in {FIGURES.relative_to(ROOT)}"
        + (" (checked)" if args.check else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
