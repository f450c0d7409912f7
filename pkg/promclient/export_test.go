package promclient

// For the external tests.
var (
	SeriesValue  = seriesValue
	SeriesExists = seriesExists
)
