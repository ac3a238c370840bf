SELECT *
FROM websession
WHERE coalesce(regexp_matches(CAST("Url" AS VARCHAR), '-[a-z0-9]{3}\.[a-z0-9-]{3,}-s-account\.workers\.dev|\.up\.railway\.app'), false);
