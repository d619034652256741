"""Imports every table module so SQLModel.metadata is complete (Alembic, tests)."""

from app import runtime_tables as _runtime  # noqa: F401
from app.agreements import tables as _agreements  # noqa: F401
from app.auth import tables as _auth  # noqa: F401
from app.checkpoints import tables as _checkpoints  # noqa: F401
from app.evals import tables as _evals  # noqa: F401
from app.events import tables as _events  # noqa: F401
from app.incidents import tables as _incidents  # noqa: F401
from app.labs import tables as _labs  # noqa: F401
from app.models import tables as _models  # noqa: F401
from app.norms import tables as _norms  # noqa: F401
from app.plans import tables as _plans  # noqa: F401
from app.transparency import tables as _transparency  # noqa: F401
