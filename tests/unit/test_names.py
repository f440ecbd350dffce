import re

from hypothesis import given
from hypothesis import strategies as st

from compiler.ir.names import Namer, sanitize

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def test_injection_attempts_become_plain_identifiers():
    for raw in ["fc1\n.include /etc/passwd", "a b;c", "x\"y'z", ".end", "R1 a b 0\nV1", "module", "1abc", "", "__"]:
        s = sanitize(raw)
        assert IDENT.match(s), (raw, s)
        assert "\n" not in s and " " not in s and ";" not in s and "." not in s


def test_keywords_are_escaped_case_insensitively():
    assert sanitize("module") != "module"
    assert sanitize("END").lower() != "end"
    assert sanitize("Subckt").lower() != "subckt"


def test_namer_is_unique_case_insensitive_and_stable():
    seq = ["a b", "a_b", "A_B", "a-b", "x", "x"]
    n1, n2 = Namer(), Namer()
    out1 = [n1.fresh(s) for s in seq]
    out2 = [n2.fresh(s) for s in seq]
    assert out1 == out2
    assert len({o.lower() for o in out1}) == len(seq)
    assert out1[:3] == ["a_b", "a_b_2", "A_B_3"]


@given(st.lists(st.text(max_size=80), max_size=30))
def test_namer_property(raws):
    n = Namer()
    names = [n.fresh(r) for r in raws]
    assert all(IDENT.match(x) and len(x) <= 60 for x in names)
    assert len({x.lower() for x in names}) == len(names)
