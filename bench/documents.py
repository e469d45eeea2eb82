"""Document parsing: speed and peak memory per MB for each PDF and DOCX candidate.

Usage: .venv/bin/python bench/documents.py [--pages 10,100,300] [--repeat 3]

Side by side in one run, on generated PDFs of several sizes (text known
exactly), on the real PDFs found on this machine (Debian ships a few under
/usr/share/doc) and on generated DOCX files:

- pypdfium2, pypdf and pdfminer.six for PDF; python-docx and reading
  word/document.xml directly for DOCX; and ``shipped``, what
  summaries.documents.extract does (its limits and checks included);
- speed: MB/s and pages/s, the best of ``--repeat`` runs;
- memory: the peak RSS added by one parse (the kernel's high-water mark,
  reset before the parse, so C allocations in pdfium count too), per MB of
  input; each (candidate, document) runs in a fresh process;
- a stream bomb (256 MB of content stream in 250 kB): the time and peak
  memory each candidate spends before it gives up, or succeeds;
- quality: word F1 of the extracted text against the text written into a
  generated PDF, or against poppler's pdftotext on a real one (when
  pdftotext is installed; otherwise no figure).
"""

from __future__ import annotations

import argparse
import collections
import gc
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import docx  # noqa: E402
import pdfminer.high_level  # noqa: E402
import pypdf  # noqa: E402
import pypdfium2  # noqa: E402

from summaries import documents  # noqa: E402
from tests.helpers.documents import (  # noqa: E402
    make_docx,
    make_pdf,
    make_stream_bomb_pdf,
    prose,
)

REAL_PDF_DIRS = ("/usr/share/doc", "/usr/share/texmf", "/usr/share/texlive")
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def pdfium_text(body: bytes) -> tuple[str, int]:
    pdf = pypdfium2.PdfDocument(body)
    try:
        parts = []
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            parts.append(textpage.get_text_bounded())
            textpage.close()
            page.close()
        return "\n".join(parts), len(pdf)
    finally:
        pdf.close()


def pypdf_text(body: bytes) -> tuple[str, int]:
    reader = pypdf.PdfReader(io.BytesIO(body))
    return "\n".join(page.extract_text() for page in reader.pages), len(reader.pages)


def pdfminer_text(body: bytes) -> tuple[str, int]:
    text = pdfminer.high_level.extract_text(io.BytesIO(body))
    return text, text.count("\f") or 1


def python_docx_text(body: bytes) -> tuple[str, int]:
    document = docx.Document(io.BytesIO(body))
    return "\n".join(p.text for p in document.paragraphs), 1


def docx_xml_text(body: bytes) -> tuple[str, int]:
    with zipfile.ZipFile(io.BytesIO(body)) as archive, archive.open("word/document.xml") as xml:
        paragraphs = []
        for _, element in ET.iterparse(xml):
            if element.tag == f"{_W}p":
                paragraphs.append("".join(t.text or "" for t in element.iter(f"{_W}t")))
                element.clear()
    return "\n".join(paragraphs), 1


def shipped(kind: documents.Kind) -> Callable[[bytes], tuple[str, int]]:
    def run(body: bytes) -> tuple[str, int]:
        document = documents.extract(
            body, kind, max_pages=10_000, max_chars=10**9, deadline=time.monotonic() + 600
        )
        return document.text, document.pages

    return run


PDF = {
    "pypdfium2": pdfium_text,
    "pypdf": pypdf_text,
    "pdfminer.six": pdfminer_text,
    "shipped": shipped(documents.Kind.PDF),
}
DOCX = {
    "python-docx": python_docx_text,
    "docx-xml": docx_xml_text,
    "shipped": shipped(documents.Kind.DOCX),
}


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def child(candidate: str, path: str, repeat: int) -> None:
    """Runs in its own process: one candidate on one file; prints its figures as JSON."""
    parse = (DOCX if path.endswith(".docx") else PDF)[candidate]
    body = Path(path).read_bytes()
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = _rss_kib("VmRSS")
    started = time.perf_counter()
    try:
        text, pages = parse(body)
    except Exception as error:  # a hostile document: how it failed, at what cost
        code = getattr(error, "code", type(error).__name__)
        seconds, peak = time.perf_counter() - started, _rss_kib("VmHWM") - before
        print(json.dumps({"seconds": seconds, "peak_kib": peak, "pages": 0, "error": code}))
        return
    best = time.perf_counter() - started
    peak = _rss_kib("VmHWM") - before
    for _ in range(repeat - 1):
        started = time.perf_counter()
        parse(body)
        best = min(best, time.perf_counter() - started)
    print(json.dumps({"seconds": best, "peak_kib": peak, "pages": pages, "text": text}))


def words(text: str) -> collections.Counter[str]:
    return collections.Counter(re.findall(r"\w+", text.lower()))


def f1(got: str, want: str) -> float:
    a, b = words(got), words(want)
    common = sum((a & b).values())
    if not common:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def real_pdfs() -> list[Path]:
    found: list[Path] = []
    for folder in REAL_PDF_DIRS:
        if Path(folder).is_dir():
            found += [p for p in Path(folder).rglob("*.pdf") if p.stat().st_size > 50_000]
    return sorted(found)[:6]


def pdftotext(path: Path) -> str | None:
    if shutil.which("pdftotext") is None:
        return None
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", default="10,100,300")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("CANDIDATE", "PATH"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.repeat)
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench-documents-"))
    cases: list[tuple[str, Path, str | None, dict[str, Callable[[bytes], tuple[str, int]]]]] = []
    # Hostile: what each candidate does with a 256 MB content stream packed into 250 kB.
    bomb = work / "stream-bomb-256MB.pdf"
    bomb.write_bytes(make_stream_bomb_pdf())
    cases.append((bomb.name, bomb, None, PDF))
    for count in (int(n) for n in args.pages.split(",")):
        pages = [prose(i, 420) for i in range(count)]
        path = work / f"generated-{count}p.pdf"
        path.write_bytes(make_pdf(pages, title=f"Generated {count}"))
        cases.append((path.name, path, "\n".join(pages), PDF))
    reals = real_pdfs()
    if not reals:
        print("no real PDF on this machine (looked under " + ", ".join(REAL_PDF_DIRS) + ")")
    for path in reals:
        cases.append((path.name, path, pdftotext(path), PDF))
    for count in (50, 2000):
        paragraphs = [prose(i, 60) for i in range(count)]
        path = work / f"generated-{count}para.docx"
        path.write_bytes(make_docx(paragraphs, heading="Generated"))
        cases.append((path.name, path, "Generated\n" + "\n".join(paragraphs), DOCX))

    header = f"{'document':34} {'candidate':13} {'MB':>6} {'pages':>5} {'MB/s':>7} "
    header += f"{'pages/s':>8} {'peak MiB':>8} {'MiB/MB':>7} {'F1':>6}"
    print(header)
    print("-" * len(header))
    failed = False
    for name, path, reference, candidates in cases:
        mb = path.stat().st_size / 1e6
        for candidate in candidates:
            run = subprocess.run(
                [sys.executable, __file__, "--repeat", str(args.repeat), "--child", candidate,
                 str(path)],
                capture_output=True, text=True, check=False,
            )
            if run.returncode != 0:
                failed = True
                error = run.stderr.strip().splitlines()[-1:] or ["?"]
                print(f"{name[:34]:34} {candidate:13} failed: {error[0][:80]}")
                continue
            got = json.loads(run.stdout)
            peak = got["peak_kib"] / 1024
            if "error" in got:
                failed = failed or path != bomb
                print(
                    f"{name[:34]:34} {candidate:13} {mb:6.2f} refused in {got['seconds']:.2f} s, "
                    f"peak {peak:.1f} MiB: {got['error']}"
                )
                continue
            quality = f"{f1(got['text'], reference):6.3f}" if reference is not None else "     -"
            print(
                f"{name[:34]:34} {candidate:13} {mb:6.2f} {got['pages']:5d} "
                f"{mb / got['seconds']:7.2f} {got['pages'] / got['seconds']:8.1f} "
                f"{peak:8.1f} {peak / mb:7.1f} {quality}"
            )
    shutil.rmtree(work)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
