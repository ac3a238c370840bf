"""Export of Sigma rules and their exclusions as KQL, SPL, ES|QL, Spark SQL and DuckDB SQL."""

from proxyhunt.export.convert import Conversion, ConvertError, convert
from proxyhunt.export.targets import TARGETS

__all__ = ["TARGETS", "Conversion", "ConvertError", "convert"]
