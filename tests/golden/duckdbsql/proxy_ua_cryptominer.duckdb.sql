SELECT *
FROM websession
WHERE coalesce(lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('XMRig %') ESCAPE '\' OR lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('ccminer%') ESCAPE '\', false);
