"""User files: UTF-8 with a BOM is read like UTF-8 without one; an undecodable file has one wording.

The old behaviour: a BOM made JSON files fail with `Unexpected UTF-8 BOM (decode using utf-8-sig)`,
YAML keys start with U+FEFF, and a template render its BOM before `#!/bin/bash`. Undecodable files
were reported as `not UTF-8 text (byte N)` or `template is not UTF-8 text (byte N)`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orchestrator.errors import UserError
from orchestrator.experiment import decode_user_text, read_experiment_file
from orchestrator.profile import load_profile
from orchestrator.render import load_template

BOM = b"\xef\xbb\xbf"
EXPERIMENT_JSON = json.dumps({"agent": "DQN", "metaParameters": {"lr": [0.1, 0.01]}}).encode()
EXPERIMENT_YAML = b"agent: DQN\nmetaParameters:\n  lr: [0.1, 0.01]\n"
PROFILE_YAML = b"account: def-me\nhours: 2\n"
PROFILE_JSON = b'{"account": "def-me", "hours": 2}'
TEMPLATE = b"#!/bin/bash\n{% for d in directives %}{{ d }}\n{% endfor %}echo caf\xc3\xa9\n"
# one wording for every kind of file: the file, then where the bad byte is, then what to do
UNDECODABLE = re.compile(
    r"^(?P<file>.+): not UTF-8 text \(byte (?P<byte>\d+), line (?P<line>\d+): 0xff\); save it as UTF-8$"
)


def write(tmp_path: Path, name: str, raw: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(raw)
    return path


@pytest.mark.parametrize(("name", "raw"), [("e.json", EXPERIMENT_JSON), ("e.yaml", EXPERIMENT_YAML)])
def test_experiment_file_with_bom_reads_as_without(tmp_path, name, raw):
    plain = read_experiment_file(write(tmp_path, name, raw))
    with_bom = read_experiment_file(write(tmp_path, "bom-" + name, BOM + raw))
    assert with_bom.data == plain.data
    assert list(with_bom.data) == ["agent", "metaParameters"]  # no key starts with U+FEFF


@pytest.mark.parametrize(("name", "raw"), [("p.yaml", PROFILE_YAML), ("p.json", PROFILE_JSON)])
def test_profile_with_bom_reads_as_without(tmp_path, name, raw):
    plain = load_profile(write(tmp_path, name, raw))
    with_bom = load_profile(write(tmp_path, "bom-" + name, BOM + raw))
    assert with_bom == plain
    assert (with_bom.account, with_bom.time) == ("def-me", "1:59:59")


def test_template_with_bom_reads_as_without(tmp_path):
    text = load_template(write(tmp_path, "bom.sh.j2", BOM + TEMPLATE))
    assert text == TEMPLATE.decode()
    assert text.startswith("#!/bin/bash\n")  # a BOM before the shebang would make it no shebang at all


def test_only_a_leading_bom_is_dropped(tmp_path):
    # U+FEFF inside the text is content (e.g. a value), not a byte-order mark
    data = read_experiment_file(write(tmp_path, "e.json", BOM + b'{"name": "a\xef\xbb\xbfb"}')).data
    assert data == {"name": "a\ufeffb"}


def test_bom_changes_nothing_but_the_content_hash(tmp_path):
    # the hash is of the bytes (what the ledger compares to notice an edit); adding a BOM is an edit
    plain = read_experiment_file(write(tmp_path, "e.json", EXPERIMENT_JSON))
    with_bom = read_experiment_file(write(tmp_path, "f.json", BOM + EXPERIMENT_JSON))
    assert plain.content_hash != with_bom.content_hash


def _undecodable(raw: bytes) -> bytes:
    """`raw` with an 0xff byte at the start of its second line."""
    head, _, tail = raw.partition(b"\n")
    return head + b"\n\xff" + tail


@pytest.mark.parametrize(
    ("name", "raw", "load"),
    [
        ("e.json", b"{\n" + EXPERIMENT_JSON[1:], read_experiment_file),
        ("e.yaml", EXPERIMENT_YAML, read_experiment_file),
        ("p.yaml", PROFILE_YAML, load_profile),
        ("p.json", b"{\n" + PROFILE_JSON[1:], load_profile),
        ("t.sh.j2", TEMPLATE, load_template),
    ],
)
@pytest.mark.parametrize("bom", [b"", BOM])
def test_undecodable_files_have_one_wording(tmp_path, name, raw, load, bom):
    path = write(tmp_path, name, bom + _undecodable(raw))
    with pytest.raises(UserError) as info:
        load(path)
    assert info.value.exit_code == 2
    match = UNDECODABLE.match(str(info.value))
    assert match, str(info.value)
    assert match["file"] == str(path)
    assert match["line"] == "2"
    # the offset is the byte's in the file, BOM included, so `xxd` or an editor finds it there
    assert path.read_bytes()[int(match["byte"])] == 0xFF


def test_utf16_is_named(tmp_path):
    path = write(tmp_path, "e.json", "\ufeff{}".encode("utf-16"))
    with pytest.raises(UserError, match=r"e\.json: not UTF-8 text \(it is UTF-16\); save it as UTF-8$"):
        read_experiment_file(path)


def test_decode_user_text_is_the_shared_decoder():
    assert decode_user_text(BOM + b"x", "f") == "x"
    assert decode_user_text(b"", "f") == ""
    with pytest.raises(UserError, match=r"^f: not UTF-8 text \(byte 0, line 1: 0xff\)"):
        decode_user_text(b"\xff", "f")


def test_config_json_with_a_bom_is_read_and_undecodable_gets_the_one_wording(tmp_path: Path) -> None:
    from orchestrator.config import load_config

    (tmp_path / "config.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"save_path": "results/{params}"}).encode())
    assert load_config(tmp_path).save_path == "results/{params}"
    (tmp_path / "config.json").write_bytes(b'{"save_path": "r\xe9sultats"}')
    with pytest.raises(UserError, match=r"config\.json: not UTF-8 text \(byte 16.*save it as UTF-8"):
        load_config(tmp_path)
