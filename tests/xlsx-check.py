#!/usr/bin/python3
"""Reads bbt-report's XLSX workbooks back with an independent reader (Debian's
python3-openpyxl) and compares them cell by cell with the same reports' CSV.

Usage: xlsx-check.py MANIFEST

MANIFEST (JSON, written by tests/test-reports.c) lists the cases:
  [{"csv": PATH, "xlsx": PATH, "chinese": BOOL, "title": TEXT,
    "tables": [{"caption": TEXT, "types": ["text" | "int" | "rate" | "num:D", ...]}]}]
The column types come from the report's document model; the values and the
texts come only from the two files.

For every workbook: one sheet per table, in order, named from the caption
(Excel's rules: at most 31 characters, none of []:*?/\\, unique), then a notes
sheet if the CSV has notes, then the settings sheet. Each sheet: the caption
(or the report's title) in A1, the header in row 2, frozen below it (A3), the
rows from row 3, each column's width set. Cells: empty where the CSV field is
empty; a number where the column is a number, equal to the CSV's field after
rounding it to the CSV's decimals (percentages as fractions), in the format
"0.0%" for rates, "0" plus the decimals for numbers, "0" for integers; a string
identical to the CSV's field (after the CSV's formula guard) otherwise. (A figure
within 1e-14 of a rounding tie may round one way in C and the other from the
workbook's 16 digits: tie() allows that, and nothing else.)
Exit status 0 when everything matches, 1 otherwise (every mismatch printed).
"""

import csv
import datetime
import decimal
import io
import json
import math
import re
import sys

try:
    import openpyxl
    from openpyxl.utils import get_column_letter
except ImportError:
    print("xlsx-check: python3-openpyxl is missing: run scripts/install-deps", file=sys.stderr)
    sys.exit(1)

SHEET_NAME_MAX = 31
# Excel refuses these in a sheet name; the renderer writes their full-width forms.
SHEET_CHARS = {"[": "\uff3b", "]": "\uff3d", ":": "\uff1a", "*": "\uff0a", "?": "\uff1f", "/": "\uff0f",
               "\\": "\uff3c"}
# The settings row whose value is the time of the run: two runs may be a minute apart.
GENERATED = {"生成时间", "Generated"}


problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def clean_sheet_name(want, limit):
    out = []
    for ch in want[:limit]:
        ch = SHEET_CHARS.get(ch, ch)
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            ch = " "
        out.append(ch)
    for i in (0, len(out) - 1):
        if out and out[i] == "'":
            out[i] = "\u2019"
    return "".join(out) or "Sheet"


def sheet_names(wants):
    """The names Excel allows, unique without regard to case, as the renderer makes them."""
    used = []
    for want in wants:
        name = clean_sheet_name(want, SHEET_NAME_MAX)
        n = 1
        while name.lower() in (u.lower() for u in used):
            n += 1
            suffix = f"({n})"
            name = clean_sheet_name(want, SHEET_NAME_MAX - len(suffix)) + suffix
        used.append(name)
    return used


def csv_guarded(text):
    """A text field as the CSV writes it: a leading apostrophe where Excel would see a formula."""
    if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not re.fullmatch(r"-\d+(\.\d+)?", text)):
        return "'" + text
    return text


def rounded(value, decimals):
    """VALUE as C's "%.*f" of round(value * 10^d) / 10^d (half away from zero), as bbt prints it."""
    scale = 10.0 ** decimals
    scaled = value * scale
    if abs(scaled) < 2.0 ** 53:
        whole = decimal.Decimal(scaled).quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP)
        value = float(whole) / scale
    if value == 0:
        value = 0.0
    return "%.*f" % (decimals, value)


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        raw = f.read()
    if not raw.startswith("\ufeff"):
        problem(path, "no UTF-8 BOM")
    records = list(csv.reader(io.StringIO(raw.lstrip("\ufeff"), newline="")))
    blocks, cur = [], []
    for rec in records:
        if rec == []:
            if cur:
                blocks.append(cur)
            cur = []
        else:
            cur.append(rec)
    if cur:
        blocks.append(cur)
    tables, notes, settings = [], [], None
    for b in blocks:
        if b[0] in (["设置", "值"], ["setting", "value"]):
            settings = b[1:]
        elif all(len(r) == 1 and (r[0].startswith("注：") or r[0].startswith("Note: ")) for r in b):
            notes = [r[0].split("：", 1)[1] if r[0].startswith("注：") else r[0][len("Note: "):] for r in b]
        else:
            tables.append(b)
    return tables, notes, settings


def tie(value, decimals, field):
    """VALUE within 1e-14 (relative) of a rounding tie, and FIELD the other side of it.

    A workbook holds a number in at most 17 significant digits (libxlsxwriter
    writes 16, Excel works to 15), so a figure such as 3 × 1.005 =
    3.0149999999999997 is 3.015 there, which rounds up where C's exact binary
    rounding went down. Only such ties may differ, and by one in the last place."""
    scaled = abs(value) * 10.0 ** decimals
    if abs(scaled - math.floor(scaled) - 0.5) > max(scaled, 1.0) * 1e-14:
        return False
    try:
        return abs(decimal.Decimal(field) - decimal.Decimal(rounded(value, decimals))) == \
            decimal.Decimal(1).scaleb(-decimals)
    except decimal.InvalidOperation:
        return False


def minute_apart(a, b):
    """Two "YYYY-MM-DD HH:MM" times at most a minute apart (two runs of the same report)."""
    try:
        ta, tb = (datetime.datetime.strptime(t, "%Y-%m-%d %H:%M") for t in (a, b))
    except (TypeError, ValueError):
        return False
    return abs((ta - tb).total_seconds()) <= 60


def number_format_of(kind):
    if kind == "rate":
        return "0.0%"
    if kind == "int":
        return "0"
    if kind.startswith("num:"):
        d = int(kind[4:])
        return "0" if d == 0 else "0." + "0" * d
    return None


def check_sheet_frame(where, ws, title, header, widths=True):
    if ws["A1"].value != title:
        problem(where, f"A1 is {ws['A1'].value!r}, expected the caption {title!r}")
    got = [ws.cell(row=2, column=c + 1).value for c in range(len(header))]
    if got != header:
        problem(where, f"header {got!r}, expected {header!r}")
    if ws.freeze_panes != "A3":
        problem(where, f"frozen at {ws.freeze_panes!r}, expected A3 (caption and header rows)")
    if widths:
        for c in range(len(header)):
            dim = ws.column_dimensions.get(get_column_letter(c + 1))
            if dim is None or not dim.customWidth or not dim.width or dim.width < 6:
                problem(where, f"column {get_column_letter(c + 1)}: no width set")


def check_cell(where, kind, cell, field):
    value = cell.value
    if field == "":
        if value is not None:
            problem(where, f"{value!r} where the CSV is empty")
        return 0
    if kind == "time":
        if not isinstance(value, datetime.datetime):
            problem(where, f"{value!r} is not a date and time (CSV {field!r})")
        elif value.strftime("%Y-%m-%d %H:%M") != field:
            problem(where, f"{value:%Y-%m-%d %H:%M}, CSV has {field!r}")
        if cell.number_format != "yyyy-mm-dd hh:mm":
            problem(where, f"number format {cell.number_format!r}, expected 'yyyy-mm-dd hh:mm'")
        return 1
    fmt = number_format_of(kind)
    if fmt is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problem(where, f"{value!r} is not a number (CSV {field!r})")
            return 1
        decimals = len(field.split(".", 1)[1]) if "." in field else 0
        if rounded(float(value), decimals) != field and not tie(float(value), decimals, field):
            problem(where, f"{value!r} rounds to {rounded(float(value), decimals)}, CSV has {field}")
        if cell.number_format != fmt:
            problem(where, f"number format {cell.number_format!r}, expected {fmt!r}")
        return 1
    if not isinstance(value, str):
        problem(where, f"{value!r} is not text (CSV {field!r})")
        return 1
    if csv_guarded(value) != field:
        problem(where, f"{value!r}, CSV has {field!r}")
    return 1


def check_case(case):
    tables, notes, settings = read_csv(case["csv"])
    wb = openpyxl.load_workbook(case["xlsx"])
    name = case["xlsx"]
    cells = 0
    want_tables = case["tables"]
    if len(tables) != len(want_tables):
        problem(case["csv"], f"{len(tables)} tables, the document has {len(want_tables)}")
        return 0
    if wb.properties.title != case["title"]:
        problem(name, f"title property {wb.properties.title!r}, expected {case['title']!r}")
    extra = (["说明" if case["chinese"] else "Notes"] if notes else []) + ["设置" if case["chinese"] else "Settings"]
    names = sheet_names([t["caption"] for t in want_tables] + extra)
    if wb.sheetnames != names:
        problem(name, f"sheets {wb.sheetnames!r}, expected {names!r}")
        return 0
    for i, (block, want) in enumerate(zip(tables, want_tables)):
        ws = wb.worksheets[i]
        where = f"{name}[{ws.title}]"
        caption, header, rows = block[0][0], block[1], block[2:]
        if caption != want["caption"]:
            problem(where, f"CSV caption {caption!r}, document {want['caption']!r}")
        if len(header) != len(want["types"]):
            problem(where, f"{len(header)} CSV columns, the document has {len(want['types'])}")
            continue
        check_sheet_frame(where, ws, caption, header)
        if ws.max_row != 2 + len(rows):
            problem(where, f"{ws.max_row - 2} rows, the CSV has {len(rows)}")
        for r, rec in enumerate(rows):
            if len(rec) != len(header):
                problem(where, f"CSV row {r + 1} has {len(rec)} fields")
                continue
            for c, field in enumerate(rec):
                cell = ws.cell(row=3 + r, column=c + 1)
                cells += check_cell(f"{where}!{cell.coordinate}", want["types"][c], cell, field)
    k = len(want_tables)
    if notes:
        ws = wb.worksheets[k]
        where = f"{name}[{ws.title}]"
        check_sheet_frame(where, ws, case["title"], ["说明" if case["chinese"] else "Note"], widths=False)
        got = [ws.cell(row=3 + i, column=1).value for i in range(ws.max_row - 2)]
        if got != notes:
            problem(where, f"notes {got!r}, CSV has {notes!r}")
        cells += len(got)
        k += 1
    ws = wb.worksheets[k]
    where = f"{name}[{ws.title}]"
    check_sheet_frame(where, ws, case["title"], ["设置", "值"] if case["chinese"] else ["Setting", "Value"])
    if settings is None:
        problem(case["csv"], "no settings")
        return cells
    got = [[ws.cell(row=3 + i, column=c).value for c in (1, 2)] for i in range(ws.max_row - 2)]
    if len(got) != len(settings):
        problem(where, f"{len(got)} settings, the CSV has {len(settings)}")
    for (label, value), rec in zip(got, settings):
        if label != rec[0]:
            problem(where, f"setting {label!r}, CSV has {rec[0]!r}")
        elif value != rec[1] and not (label in GENERATED and minute_apart(value, rec[1])):
            problem(where, f"setting {label}: {value!r}, CSV has {rec[1]!r}")
        cells += 2
    return cells


def main():
    if len(sys.argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    cells = 0
    for case in cases:
        cells += check_case(case)
    for p in problems:
        print("xlsx-check:", p, file=sys.stderr)
    print(f"xlsx-check: {len(cases)} workbooks, {cells} cells compared, {len(problems)} mismatches")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
