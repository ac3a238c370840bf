SELECT *
FROM websession
WHERE coalesce(lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('Microsoft BITS/%') ESCAPE '\\' AND NOT coalesce(lower(CAST(`DstHostname` AS STRING)) LIKE lower('%.com') ESCAPE '\\' OR lower(CAST(`DstHostname` AS STRING)) LIKE lower('%.net') ESCAPE '\\' OR lower(CAST(`DstHostname` AS STRING)) LIKE lower('%.org') ESCAPE '\\' OR lower(CAST(`DstHostname` AS STRING)) LIKE lower('%.scdn.co') ESCAPE '\\' OR lower(CAST(`DstHostname` AS STRING)) LIKE lower('%.sfx.ms') ESCAPE '\\', false), false);
