SELECT *
FROM websession
WHERE coalesce(lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('XMRig %') ESCAPE '\\' OR lower(CAST(`HttpUserAgent` AS STRING)) LIKE lower('ccminer%') ESCAPE '\\', false);
