"""Custom templates: the variables and filter they get, and errors that name the template."""

from __future__ import annotations

from dataclasses import replace

import pytest
from render_support import GOLDEN_CASES

from orchestrator.errors import UserError
from orchestrator.render import load_template, render_script


def test_custom_template_variables_and_filter():
    script = replace(GOLDEN_CASES["minimal"], project_root="/a b")
    text = render_script(
        script,
        '{{ tag }} {{ num_tasks }} {{ parallel }} {{ project_root_q }} {{ "it\'s" | shell_quote }}\n'
        "{% for d in directives %}{{ d }}\n{% endfor %}{{ setup | length }} {{ command }}",
    )
    assert text.startswith("orch-minimal-1a2b3c4d 1 1 '/a b' 'it'\"'\"'s'\n#SBATCH --job-name=")
    assert text.endswith('0 python src/main.py -e "$ORCH_EXPERIMENT" -i "$index"')


def test_unknown_template_variable_names_template_and_variable():
    with pytest.raises(UserError) as info:
        render_script(GOLDEN_CASES["minimal"], "#!/bin/bash\n{{ project_root }}\n", template_name="my.sh.j2")
    message = str(info.value)
    assert message.startswith("my.sh.j2: ") and "'project_root' is undefined" in message
    assert "project_root_q" in message  # lists what is available


def test_template_syntax_error():
    with pytest.raises(UserError, match=r"my.sh.j2: template syntax error at line 2"):
        render_script(GOLDEN_CASES["minimal"], "ok\n{% for x in %}\n", template_name="my.sh.j2")


def test_load_template(tmp_path):
    path = tmp_path / "t.sh.j2"
    path.write_text("#!/bin/bash\n{{ tag }}\n", encoding="utf-8")
    assert load_template(path) == "#!/bin/bash\n{{ tag }}\n"
    assert render_script(GOLDEN_CASES["minimal"], load_template(str(path))) == "#!/bin/bash\norch-minimal-1a2b3c4d\n"
    with pytest.raises(UserError, match="template file not found") as info:
        load_template(tmp_path / "missing.j2")
    assert str(tmp_path / "missing.j2") in str(info.value)
    with pytest.raises(UserError, match="directory"):
        load_template(tmp_path)
