SELECT *
FROM websession
WHERE coalesce(lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('Q2hyb21l%') ESCAPE '\\' OR lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('QXBwbGVXZWJLaX%') ESCAPE '\\' OR lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('RGFsdmlr%') ESCAPE '\\' OR lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('TW96aWxsY%') ESCAPE '\\', false);
