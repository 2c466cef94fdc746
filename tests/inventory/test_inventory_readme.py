"""The README's inventory section lists every variable with its default, as the code has them."""

from __future__ import annotations

from pathlib import Path

from agent.inventory.connection import PSRP_OPTIONS, WINRM_EXTRAS, WINRM_OPTIONS
from agent.inventory.document import READ
from agent.inventory.variables import EXFIX_VARIABLES, variable_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_table_is_the_one_the_code_makes() -> None:
    section = README.read_text(encoding="utf-8").split("### Inventory\n", 1)[1].split("\n## ", 1)[0]
    assert variable_table() in section


def test_the_table_names_every_variable_exfix_reads() -> None:
    table = variable_table()
    for option in (*PSRP_OPTIONS, *WINRM_OPTIONS, *WINRM_EXTRAS):
        for variable in option.variables:
            if variable != "inventory_hostname":
                assert f"`{variable}`" in table, variable
    listed = {name.strip() for names, _, _ in EXFIX_VARIABLES for name in names.split(",")}
    assert listed == set(READ)
