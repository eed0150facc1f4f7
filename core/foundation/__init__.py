"""Foundation: what every other part of core may use, and which uses nothing of core.

Owns the injected clock (``clock``), where an instance's settings come from (``config``),
prices in a currency's minor unit (``money``) and the one standard for typed text (``text``).

May use: the standard library and third-party packages only; never another ``bookwell.core``
package, nor ``bookwell.hooks``.
"""
