"""Farm data: fields in and records out in the formats farm software reads, and the agronomic layers.

- :mod:`.field`: :class:`FieldData` (boundary, obstacles, AB lines, georeference), load/save by format;
- :mod:`.kml`, :mod:`.shp`, :mod:`.isoxml`: KML/KMZ, ESRI Shapefile, ISO 11783-10 TaskData;
- :mod:`.records`: the as-applied record (ISO-XML task + binary time log, Shapefile, GeoJSON).
"""

from agricare.core.farmdata.field import (FORMATS, FarmDataError, FieldData, load_field_data,  # noqa: F401
                                          save_field_data)
