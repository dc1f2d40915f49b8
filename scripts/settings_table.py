"""Print the README's settings table from the Settings model (python -m scripts.settings_table)."""

from __future__ import annotations

from gatelab.settings import Settings


def settings_table() -> str:
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if name == "home":
            default = "`~/.gatelab`"
        elif field.default is None:
            default = ""
        else:
            default = f"`{field.default}`"
        lines.append(f"| `GATELAB_{name.upper()}` | {default} | {field.description} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(settings_table())
