"""CSV cells a spreadsheet will not run, and the names they stand for."""

import pytest

from moby_al_plugin.labelling.spreadsheet_cells import neutralise, restore


@pytest.mark.parametrize(
    "name, cell",
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tname", "'\tname"),
        ("\rname", "'\rname"),
        ("'quoted", "''quoted"),  # a quote of its own keeps it through the round trip
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_cells_by_hand_and_back(name, cell):
    assert neutralise(name) == cell
    assert restore(cell) == name
