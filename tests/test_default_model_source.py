"""A default model that cannot be made says where its spec was set: ``PODIUM_MODEL=nope:x`` failed
the step with ``unknown model provider 'nope' in 'nope:x'`` and nothing naming the variable."""

from __future__ import annotations

import pytest

from podium.models import Gateway, ModelNotAvailable


@pytest.mark.parametrize("value, says", [("nope:x", "unknown model provider 'nope'"), ("nope", "is not 'provider:model'")])
def test_a_bad_podium_model_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path, value: str, says: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PODIUM_MODEL", value)
    with pytest.raises(ModelNotAvailable) as info:
        Gateway().model()
    text = str(info.value)
    assert says in text and "$PODIUM_MODEL" in text and "set PODIUM_MODEL to provider:model" in text, text


def test_a_bad_model_in_podium_toml_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PODIUM_MODEL", raising=False)
    (tmp_path / "podium.toml").write_text('model = "nope:x"\n')
    with pytest.raises(ModelNotAvailable) as info:
        Gateway().model()
    assert "podium.toml" in str(info.value) and "change model in" in str(info.value), info.value


def test_a_model_named_by_the_caller_is_not_blamed_on_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PODIUM_MODEL", "local:smollm2-135m")
    with pytest.raises(ModelNotAvailable) as info:
        Gateway().model("nope:x")
    assert "PODIUM_MODEL" not in str(info.value)
