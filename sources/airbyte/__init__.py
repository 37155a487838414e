"""The Airbyte bridge: any Airbyte source connector as a connbot data source.

protocol.py reads the Airbyte Protocol, runner.py runs a connector's commands safely,
records.py types records into Arrow, mapping.py maps a configuration onto connbot's notions,
and source.py is the data source itself. Installing connectors is engine/connectors.py.
"""

from sources.airbyte.source import PREFIX, AirbyteSource, Timeouts, source_name

__all__ = ["PREFIX", "AirbyteSource", "Timeouts", "source_name"]
