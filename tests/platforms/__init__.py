"""Local fakes of the ad platforms (Facebook Graph, Google Ads), built from their documented shapes."""
