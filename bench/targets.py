"""Objects the bench's fire server imports (as ``bench.targets``) for the chain row.

``targets.outer.inner.add(1, 2)`` reads three attributes on the server (a class, a
nested class, a static method) before the call, like ``User.objects.get()`` does.
"""

from __future__ import annotations

import operator


class outer:
    """First level of the chain."""

    class inner:
        """Second level; `add` is the third."""

        add = staticmethod(operator.add)
