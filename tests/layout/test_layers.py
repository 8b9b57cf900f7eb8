"""`shared/src` keeps its layers: no import cycle between modules, no import up the layers, and
nothing below `http` naming lambda_http. The checker is tried on a small made-up crate first, so
a checker that finds nothing cannot pass for a clean tree."""

from pathlib import Path

import layers


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_checker_finds_cycles_upward_imports_and_http_below(tmp_path):
    src = write(
        tmp_path,
        {
            "lib.rs": "pub mod domain;\npub mod token;\n",
            "domain/mod.rs": "pub mod a;\npub mod b;\npub use a::Thing;\n",
            "domain/a.rs": "use crate::domain::b::Other;\npub struct Thing;\n",
            "domain/b.rs": "use super::Thing;\nuse crate::token::Up;\npub struct Other;\n"
            "fn f(_: lambda_http::Request) {}\n",
            "token/mod.rs": "pub struct Up;\n",
            # A re-export of another module's item is a use of it.
            "domain/c.rs": "pub use crate::domain::d::D;\npub struct C;\n",
            "domain/d.rs": "use crate::domain::c::C;\npub struct D;\n",
        },
    )
    found, up, below = layers.report(src)
    # `super::Thing` is re-exported from domain::a: the cycle is a <-> b, not through the mod.
    assert found == [["domain::a", "domain::b"], ["domain::c", "domain::d"]]
    assert up == ["domain::b -> token"]
    assert below == ["domain::b"]


def test_test_code_is_not_counted(tmp_path):
    src = write(
        tmp_path,
        {
            "lib.rs": "pub mod domain;\npub mod token;\n",
            "domain/mod.rs": "pub fn f() {}\n#[cfg(test)]\nmod tests { use crate::token::Up; }\n",
            "token/mod.rs": "pub struct Up;\nuse crate::domain::f;\n",
        },
    )
    assert layers.report(src) == ([], [], [])


def test_shared_has_no_cycle_and_keeps_its_layers():
    found, up, below = layers.report()
    assert found == [], f"import cycles: {found}"
    assert up == [], f"imports pointing up the layers: {up}"
    assert below == [], f"modules below http naming lambda_http: {below}"
    # Every module sits in a layer.
    modules = layers.load()
    assert len(modules) > 40
    assert {layers.layer(m) for m in modules} <= set(layers.LAYERS) | {"lib"}
