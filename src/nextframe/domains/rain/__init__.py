"""The rain domain: rain rates in mm/h with no-data from a weather-radar archive, one module per
part (`nextframe.domains.get_part`) and the modules they share (`scale`, `forecast`, `nowcast`,
`loss`)."""
