"""Documents from files: plain text, Markdown, HTML (stdlib parser) and PDF (``pypdf``, an extra).

A loader returns :class:`Document` sections: one for text, Markdown and HTML, one per page for a
PDF, so that chunks can cite the page they come from.
"""

from __future__ import annotations

import codecs
import html.parser
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import install_hint
from ..governance.files import Confined, open_confined

TEXT_SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
                 ".html": "html", ".htm": "html", ".pdf": "pdf"}  # fmt: skip


@dataclass(frozen=True, kw_only=True, slots=True)
class Document:
    """The text of a source, in sections (a PDF's pages), with what is known about it."""

    source: str
    """Where it came from (a path or a URL); the document's id within a knowledge base."""
    title: str
    type: str
    """``text``, ``markdown``, ``html`` or ``pdf``."""
    sections: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """``(text, metadata)`` pairs; a PDF page carries ``{"page": n}``."""

    @property
    def text(self) -> str:
        return "\n\n".join(t for t, _ in self.sections)


class _HTMLText(html.parser.HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "svg", "head"}
    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
              "pre", "blockquote", "table", "ul", "ol", "header", "footer", "title"}  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False
        self._cells = 0  # cells begun in the table row being read

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self._SKIP:
            self._skip += 1
        if tag == "title":
            self._in_title = True
        if tag in self._BLOCK:
            self.parts.append("\n\n" if tag.startswith("h") or tag == "p" else "\n")
        if tag == "tr":
            self._cells = 0
        elif tag in ("td", "th"):  # a row's cells were run together: "zł 899₹ 9,500R$ 790" for three prices
            if self._cells and not self._skip:
                self.parts.append(" | ")
            self._cells += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skip:
            self._skip -= 1
        if tag == "title":
            self._in_title = False
        if tag in self._BLOCK:
            self.parts.append("\n\n" if tag.startswith("h") or tag == "p" else "\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)


def html_text(markup: str) -> tuple[str, str]:
    """The visible text and the ``<title>`` of an HTML page."""
    p = _HTMLText()
    p.feed(markup)
    p.close()
    text = re.sub(r"[ \t\r\f\v]+", " ", "".join(p.parts))
    text = re.sub(r"\s*\n\s*\n\s*", "\n\n", text)
    return text.strip(), " ".join(p.title.split())


def _markdown_title(text: str) -> str | None:
    from ._chunking import headings

    m = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    if m is None:
        return None
    real = {at for at, _ in headings(text)}
    for m in re.finditer(r"^#\s+(.+)$", text, re.MULTILINE):
        if m.start() in real:
            return m.group(1).strip()
    return None


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n((?:[^\n]*\n)*?)(?:---|\.\.\.)[ \t]*(?:\n|\Z)")
_YAML_LINE = re.compile(r"[\w-]+\s*:|\s|-\s|#|$")


def _front_matter(text: str) -> tuple[str, str | None]:
    """A Markdown text without its YAML front matter (the ``---`` block of ``title:``, ``author:``... that
    static-site generators put first), and the front matter's ``title``. Before, the block was ingested
    as the page's first passage ("title: Driving lessons author: office updated: 2026-10-01"). A ``---``
    rule around ordinary paragraphs is not front matter and stays."""
    m = _FRONT_MATTER.match(text)
    if m is None or not all(_YAML_LINE.match(line) for line in m.group(1).splitlines()):
        return text, None
    found = re.search(r"^title\s*:\s*(.+?)\s*$", m.group(1), re.MULTILINE)
    return text[m.end():].lstrip("\n"), found.group(1).strip("\"'") if found else None


def pdf_pages(path: str | os.PathLike[str] | io.BytesIO) -> tuple[list[str], str | None]:
    try:
        from pypdf import PdfReader
    except ImportError:
        raise ImportError(f"PDF ingest needs pypdf: {install_hint('memory')}") from None
    reader = PdfReader(path if isinstance(path, io.BytesIO) else str(path))
    title = None
    if reader.metadata is not None and reader.metadata.title:
        title = str(reader.metadata.title)
    return [page.extract_text() or "" for page in reader.pages], title


#: The largest file ingest reads (it is read whole, then chunked and embedded): a workflow file may
#: name any file under a registered folder, a log of gigabytes too.
MAX_FILE_BYTES = 64 * 1024 * 1024


def load(path: str | os.PathLike[str], *, type: str | None = None) -> Document:
    """Read one file. The type comes from the suffix (``.txt .md .html .htm .pdf``) unless given.
    A :class:`~podium.governance.files.Confined` path (checked to lie in a registered folder) is opened
    beneath that folder without following links: the file read is the file checked."""
    p = Path(path)
    kind = type or TEXT_SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise ValueError(
            f"{p}: cannot tell the document type from {p.suffix!r}; supported: {', '.join(sorted(TEXT_SUFFIXES))}"
        )
    fd = open_confined(path) if isinstance(path, Confined) else os.open(p, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size  # of the file opened, not of whatever has its name now
        if size > MAX_FILE_BYTES:
            raise ValueError(
                f"{p}: {size / 2**20:.0f} MiB is more than a document may be ({MAX_FILE_BYTES >> 20} MiB, read "
                "whole to be chunked); split it into smaller files, or move it out of the folder being ingested"
            )
        if kind == "pdf":
            try:
                pages, title = pdf_pages(io.BytesIO(fh.read()))
            except ImportError:
                raise
            except Exception as exc:  # a damaged or mislabelled file: pypdf's message named no file
                raise ValueError(
                    f"{p}: not a readable PDF ({exc.__class__.__name__}: {exc}); export it as PDF again, or move it "
                    "out of the folder being ingested"
                ) from None
            sections = [(t, {"page": i}) for i, t in enumerate(pages, 1) if t.strip()]
            return Document(source=str(p), title=title or p.stem, type="pdf", sections=sections)
        raw = decode_text(fh.read())
    return from_text(raw, source=str(p), type=kind, title=None, default_title=p.stem)


#: Byte-order marks and the codec each names; UTF-32's come first, as UTF-32 LE's begins with UTF-16 LE's.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode_text(data: bytes) -> str:
    """A text file's bytes as text: by its byte-order mark when it has one (Windows Notepad's "Unicode" is
    UTF-16 with a BOM, and many editors start UTF-8 with one), else UTF-8; undecodable bytes become U+FFFD
    and line ends become ``\n``. Before, every file was read as UTF-8: a UTF-16 handbook page was ingested
    as letters between NUL bytes, and a UTF-8 BOM hid a Markdown title."""
    codec = next((c for bom, c in _BOMS if data.startswith(bom)), "utf-8")
    text = data.decode(codec, errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def from_text(
    raw: str, *, source: str, type: str = "text", title: str | None = None, default_title: str | None = None
) -> Document:
    """A document from text already in hand (``type`` ``text``, ``markdown`` or ``html``)."""
    if type == "html":
        text, found = html_text(raw)
        return Document(source=source, title=title or found or default_title or source, type="html",
                        sections=[(text, {})])  # fmt: skip
    if type == "markdown":
        raw, given = _front_matter(raw)
        title = title or _markdown_title(raw) or given
    return Document(source=source, title=title or default_title or source, type=type, sections=[(raw, {})])


def discover(path: str | os.PathLike[str]) -> list[Path]:
    """The supported files at ``path``: the file itself, or every one under a folder, sorted."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"{p}: no such file or folder")
    return sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES)
