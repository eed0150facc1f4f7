"""The forms of a rendered page, read as a browser reads them, and what a browser would send back
when its user presses the form's (first) submit button without changing anything."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Control:
    tag: str  # input, textarea, select, button
    name: str
    type: str = ""
    value: str = ""
    checked: bool = False
    disabled: bool = False
    multiple: bool = False
    options: list[tuple[str, bool]] = field(default_factory=list)  # (value, selected)


@dataclass
class Form:
    method: str
    action: str
    controls: list[Control] = field(default_factory=list)
    disabled_fieldsets: int = 0

    def field(self, name: str) -> str | None:
        """The value the form would send for ``name`` (the first, if several)."""
        for key, value in self.submission():
            if key == name:
                return value
        return None

    def submission(self) -> list[tuple[str, str]]:
        """The pairs a browser sends: enabled controls with a name; checkboxes and radios only
        when checked; a select's selected options (its first, for a single select with none
        selected); the first submit button, as if it were pressed."""
        pairs: list[tuple[str, str]] = []
        pressed = False
        for control in self.controls:
            if control.disabled or not control.name:
                continue
            if control.tag == "button" or control.type in ("submit", "image"):
                if not pressed:
                    pressed = True
                    pairs.append((control.name, control.value))
                continue
            if control.type in ("reset", "file"):
                continue
            if control.type in ("checkbox", "radio"):
                if control.checked:
                    pairs.append((control.name, control.value or "on"))
                continue
            if control.tag == "select":
                chosen = [value for value, selected in control.options if selected]
                if not chosen and not control.multiple and control.options:
                    chosen = [control.options[0][0]]
                pairs.extend((control.name, value) for value in chosen)
                continue
            if control.tag == "textarea":
                # As a browser submits a textarea: line breaks as CR LF.
                text = control.value.replace("\r\n", "\n").replace("\n", "\r\n")
                pairs.append((control.name, text))
                continue
            pairs.append((control.name, control.value))
        return pairs


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.form: Form | None = None
        self.textarea: Control | None = None
        self.select: Control | None = None
        self.option: list | None = None  # [value or None, selected, text]
        self.fieldsets: list[bool] = []

    def handle_starttag(self, tag, attrs):
        attributes = {name: (value if value is not None else "") for name, value in attrs}
        if tag == "form":
            self.form = Form(
                attributes.get("method", "get").lower(), html.unescape(attributes.get("action", ""))
            )
            self.forms.append(self.form)
            return
        if self.form is None:
            return
        if tag == "fieldset":
            self.fieldsets.append("disabled" in attributes)
            return
        disabled = "disabled" in attributes or any(self.fieldsets)
        name = attributes.get("name", "")
        if tag == "input":
            kind = attributes.get("type", "text").lower()
            self.form.controls.append(
                Control(
                    "input",
                    name,
                    kind,
                    attributes.get("value", ""),
                    checked="checked" in attributes,
                    disabled=disabled,
                )
            )
        elif tag == "button":
            kind = attributes.get("type", "submit").lower()
            if kind == "submit":
                self.form.controls.append(
                    Control("button", name, kind, attributes.get("value", ""), disabled=disabled)
                )
        elif tag == "textarea":
            self.textarea = Control("textarea", name, disabled=disabled)
            self.form.controls.append(self.textarea)
        elif tag == "select":
            self.select = Control(
                "select", name, disabled=disabled, multiple="multiple" in attributes
            )
            self.form.controls.append(self.select)
        elif tag == "option" and self.select is not None:
            self._close_option()
            self.option = [attributes.get("value"), "selected" in attributes, ""]

    def handle_endtag(self, tag):
        if tag == "form":
            self.form = None
        elif tag == "fieldset" and self.fieldsets:
            self.fieldsets.pop()
        elif tag == "textarea" and self.textarea is not None:
            # A browser drops the one line break that directly follows <textarea>.
            value = self.textarea.value
            if value.startswith("\r\n"):
                value = value[2:]
            elif value.startswith("\n"):
                value = value[1:]
            self.textarea.value = value
            self.textarea = None
        elif tag == "option":
            self._close_option()
        elif tag == "select":
            self._close_option()
            self.select = None

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea.value += data
        elif self.option is not None:
            self.option[2] += data

    def _close_option(self):
        if self.option is not None and self.select is not None:
            value, selected, text = self.option
            self.select.options.append((value if value is not None else text.strip(), selected))
        self.option = None


def forms_of(page_html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(page_html)
    parser.close()
    return parser.forms
