import compactstore as cs


def test_version_is_the_crate_version() -> None:
    assert cs.__version__ == "0.1.0"
