"""One declaration per setting: every user-facing settings type is built from it.

A settings type is a dataclass that inherits :class:`Settings` and declares each field once
with :func:`setting` (type from the annotation; default, range, choices, help text and the
"applies when" rule in the field). From that declaration this package derives:

- validation with errors that name the file/key, the value found and what is allowed
  (:class:`engine.errors.ConfigError`), run whenever an instance is built;
- dict/TOML/JSON round trips (:meth:`Settings.to_dict`, :meth:`Settings.from_dict`, ...);
- HDF5 attributes (:meth:`Settings.to_attrs`, :meth:`Settings.from_attrs`);
- command-line flags (:func:`add_options`, :func:`from_args`).

The Qt forms are generated on the app side (``app/forms.py``) from the same declarations.
Plain dataclasses + field metadata were chosen over pydantic/attrs: the types stay ordinary
(frozen) dataclasses that the rest of the engine already uses, and the error wording is ours.
"""

from engine.schema.cli import add_options, flag_of, from_args
from engine.schema.fields import MISSING, Setting, epoch_or_final, setting, setting_named, settings_of
from engine.schema.rules import Rule, equals, given, is_off, is_on, not_given
from engine.schema.settings import Settings
from engine.schema.validation import check_value, validate

__all__ = [
    "MISSING", "Rule", "Setting", "Settings", "add_options", "check_value", "epoch_or_final", "equals",
    "flag_of", "from_args", "given", "is_off", "is_on", "not_given", "setting", "setting_named",
    "settings_of", "validate",
]
