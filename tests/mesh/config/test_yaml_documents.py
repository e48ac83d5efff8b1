"""A YAML stream as documents: the one splitter, line numbers, bounded parsing."""

from __future__ import annotations

from mesh.config.yaml_documents import Document, plain_document, split_documents
from tests.helpers import HAND_EDITED


def test_split_keeps_each_documents_text() -> None:
    chunks = [d.text for d in split_documents(HAND_EDITED)]
    assert len(chunks) == 2
    assert chunks[0].startswith("# my hand-written file")
    assert "a comment that must survive" in chunks[1]
    assert split_documents("---\n# only a comment\n---\n") == []


def test_each_document_knows_the_file_line_it_starts_on() -> None:
    text = "a: 1\n---\n\nb: 2\n--- {c: 3}\n...\nd: 4\n"
    assert [(d.line, d.text) for d in split_documents(text)] == [
        (1, "a: 1\n"),
        (3, "\nb: 2\n"),
        (5, "{c: 3}\n"),
        (7, "d: 4\n"),
    ]


def test_plain_document_is_none_for_anything_bad() -> None:
    assert plain_document(Document("kind: X\nspec: {a: [1, 2]}\n", 1)) == {
        "kind": "X",
        "spec": {"a": [1, 2]},
    }
    assert plain_document(Document("a: [\n", 1)) is None
    bomb = "a0: &a0 [x, x]\n" + "".join(
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n" for i in range(1, 40)
    )
    assert plain_document(Document(bomb, 1)) is None
