"""The CSV inputs of tests/import/suite.sh, written by hand-picked rules (no h5batch):
quoting, embedded line breaks, a byte order mark, CRLF, empty fields, gzip, times across
the DST changes of Europe/Berlin (gaps and repeats), strptime layouts and malformed
records. Usage: make_import_case.py FOLDER"""
import gzip
import os
import random
import sys

out = sys.argv[1]
rng = random.Random(12)
HEADER = ["id", "value", "gappy", "name", "when", "day"]
NAMES = ["plain", "with, comma", 'say "hi"', "two\nlines", "Zürich", "", "x" * 30, "ünïcödé, \"q\"\r\nz", " lead"]
WHEN = ["2024-03-31 01:59:59", "2024-03-31 02:00:00", "2024-03-31T02:30:00", "2024-03-31 03:00:00",
        "2024-10-27 01:59:59", "2024-10-27 02:00:00", "2024-10-27T02:30:00", "2024-10-27 03:00:00",
        "2024-01-01T00:00:00Z", "2024-06-01T12:00:00+05:30", "2024-06-01T12:00:00.999-02:00",
        "2023-12-31T23:59:59.5", "1999-12-31 23:00", "2024-02-29 12:00:00"]


def q(s, delim=","):
    """A field as a CSV writer quotes it (only when needed, quotes doubled)."""
    if any(c in s for c in (delim, '"', "\n", "\r")) or s.startswith(" "):
        return '"' + s.replace('"', '""') + '"'
    return s


def rows(n, seed):
    r = random.Random(seed)
    for i in range(n):
        value = "" if r.random() < 0.1 else repr(round(r.uniform(-1e3, 1e3), r.randint(0, 6)))
        gappy = "" if r.random() < 0.2 else str(r.randint(-10**12, 10**12))
        yield [str(i), value, gappy, r.choice(NAMES), r.choice(WHEN), "2024-%02d-%02d" % (r.randint(1, 12), r.randint(1, 28))]


def write(name, recs, header=HEADER, nl="\n", bom=False, gz=False, delim=","):
    text = ("\ufeff" if bom else "") + delim.join(q(h, delim) for h in header) + nl
    text += "".join(delim.join(q(f, delim) for f in rec) + nl for rec in recs)
    data = text.encode()
    path = os.path.join(out, name)
    if gz:
        with gzip.open(path, "wb") as f:  # the name does not say gzip: found by its bytes
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)


write("imp-a.csv", rows(250, 1), nl="\r\n", bom=True)
write("imp-b.csv.gz", rows(150, 2), gz=True)
write("imp-c.dat", rows(40, 3), gz=True)
# quote-heavy: most records span lines, so that rank ranges start inside quoted fields
qr = random.Random(5)
quotes = [[str(i), repr(qr.random()), str(qr.randint(0, 9)), "\n".join('"%d"' % k for k in range(qr.randint(1, 6))),
           "2024-05-0%dT0%d:00:00Z" % (qr.randint(1, 9), qr.randint(0, 9)), "2024-01-01"] for i in range(500)]
write("imp-q.csv", quotes)
# declared layouts, a ';' delimiter and NA as missing
fmt = []
for i in range(120):
    y, m, d = 2000 + i % 25, 1 + i % 12, 1 + i % 28
    mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][m - 1]
    fmt.append(["%d/%02d/%02d" % (y, m, d), "%02d.%02d.%d %02d:%02d" % (d, m, y, i % 24, (7 * i) % 60),
                "%s %d %d" % (mon, d, y), str(1000 + i), "NA" if i % 7 == 0 else "%.3f" % (i / 3),
                "NA" if i % 5 == 0 else "n%d" % i, "00123" if i % 2 else "-5"])
write("imp-fmt.csv", fmt, header=["date", "stamp", "day", "meter", "reading", "note", "code"], delim=";")
# malformed: line numbers count the header as line 1
good = [["1", "2.5", "3", "a", "2024-01-01", "2024-01-01"]] * 3
write("imp-ragged.csv", good + [["4", "1", "2"]] + good)  # line 5
write("imp-baddate.csv", [["1", "2020/01/02"], ["2", "2020/13/01"]], header=["n", "date"])  # line 3
write("imp-badint.csv", [["7", "x"], ["8", "1"], ["x9", "2"]], header=["meter", "v"])  # line 4, meter
with open(os.path.join(out, "imp-open.csv"), "w") as f:
    f.write('a,b\n1,2\n3,"never closed\n4,5\n')
with open(os.path.join(out, "imp-otherhdr.csv"), "w") as f:
    f.write("id,value,gappy,name,when,DAY\n1,2,3,a,2024-01-01,2024-01-01\n")
# skip: malformed records at known lines among good ones
with open(os.path.join(out, "imp-skip.csv"), "w") as f:
    f.write('k,v,s\n1,1.5,a\n2,2.5\n3,x"y"z,b\n4,4.5,"c"d\n5,5.5,e\n6,6.5,f,g\n7,"7.5",h\n')
