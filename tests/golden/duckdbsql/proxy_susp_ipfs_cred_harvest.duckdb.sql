SELECT *
FROM websession
WHERE coalesce(regexp_matches(CAST("Url" AS VARCHAR), '(?i)(ipfs\.io/|ipfs\.io\s).+\..+@.+\.[a-z]+'), false);
